"""Run storage: results datasets, run files, run folders and their locks, saved configs, annotation session files, atomic writes."""
