"""The names of the strategies and selections, shared by every stage (a leaf: no imports).

S1 is everything mode, S2-S6 the single-round prompts (SPEC section 4), ``interactive`` the
click protocol; a prompted mask is chosen by ``oracle`` (best DICE of the candidates) or ``score``
(the model's predicted IoU). The concept strategies (text-promptable models, docs/text-prompts.md):
``T`` the target's phrase, ``T-para`` every phrasing of it, ``T-neg`` the phrases of the
dataset's targets absent from the image, ``E`` an exemplar box on one instance.
"""

from __future__ import annotations

EVERYTHING = "S1"
STRATEGIES = ("S2", "S3", "S4", "S5", "S6")
"""The single-round strategies, derived from the ground-truth mask."""
INTERACTIVE = "interactive"
TEXT = "T"
TEXT_PARAPHRASE = "T-para"
TEXT_NEGATIVE = "T-neg"
EXEMPLAR = "E"
CONCEPT_STRATEGIES = (TEXT, TEXT_PARAPHRASE, TEXT_NEGATIVE, EXEMPLAR)
"""Strategies of a concept model (text and exemplar prompts -> every instance)."""
ALL_STRATEGIES: tuple[str, ...] = (EVERYTHING, *STRATEGIES, INTERACTIVE, *CONCEPT_STRATEGIES)
STRATEGY_ORDER = ALL_STRATEGIES
"""The order of strategies in tables and figures: S1..S6, interactive, T, T-para, T-neg, E."""
SELECTIONS = ("oracle", "score")
CONCEPT_SELECTION = "union"
"""The ``selection`` of a concept row: the union of the returned instances is scored."""
