"""Data standardization: readers, slicing, normalization, label remapping, manifest."""
