"""A user's own adapter builder, as ``--model custom_adapter:build`` loads it (tests only).

It wraps the GrabCut baseline under another name, so a run shows that the user's builder (not a
built-in) made the predictions; ``build`` records the arguments it was called with.
"""

from __future__ import annotations

from sambench.models.baselines import GrabCutBaseline

CALLS: list[tuple[str | None, str]] = []


class RenamedGrabCut(GrabCutBaseline):
    name = "custom_grabcut"


def build(checkpoint: str | None, *, device: str) -> RenamedGrabCut:
    CALLS.append((checkpoint, device))
    adapter = RenamedGrabCut()
    adapter.name = "custom_grabcut"
    return adapter


def not_an_adapter(checkpoint: str | None, *, device: str) -> object:
    return object()
