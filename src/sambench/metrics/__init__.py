"""Metrics: overlap (DICE, JAC) and boundary distances (HD, HD95, ASSD, NSD)."""
