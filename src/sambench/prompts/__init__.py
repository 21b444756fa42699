"""Prompt strategies derived from ground-truth masks (SPEC section 3)."""
