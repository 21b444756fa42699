"""Model adapters behind one protocol: ``embed(image) -> Embedding``, ``predict(...) -> Prediction``."""
