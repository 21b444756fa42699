"""Mask-decoder fine-tuning on cached embeddings."""
