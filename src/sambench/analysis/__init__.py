"""Analyses over results tables: summaries in the paper layout, statistics."""
