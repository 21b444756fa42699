"""`sambench annotate`: a local web annotator with the model in the loop (see docs/annotate.md)."""
