"""The dataset recipes of the package: YAML files read by sambench.data.recipe."""
