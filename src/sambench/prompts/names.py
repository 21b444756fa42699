"""The names of the strategies and selections, shared by every stage (a leaf: no imports).

S1 is everything mode, S2-S6 the single-round prompts (SPEC section 4), ``interactive`` the
click protocol; a prompted mask is chosen by ``oracle`` (best DICE of the candidates) or ``score``
(the model's predicted IoU).
"""

from __future__ import annotations

EVERYTHING = "S1"
STRATEGIES = ("S2", "S3", "S4", "S5", "S6")
"""The single-round strategies, derived from the ground-truth mask."""
INTERACTIVE = "interactive"
ALL_STRATEGIES: tuple[str, ...] = (EVERYTHING, *STRATEGIES, INTERACTIVE)
STRATEGY_ORDER = ALL_STRATEGIES
"""The order of strategies in tables and figures: S1..S6, interactive."""
SELECTIONS = ("oracle", "score")
