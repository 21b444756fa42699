"""A user's own adapter builder, as ``--model custom_adapter:build`` loads it (tests only).

It wraps the test double :class:`fakes.FakeModel` under another name (its S5 oracle mask of a
rectangle is the filled box, DICE 100), so a run shows that the user's builder, not a built-in,
made the predictions; ``build`` records the arguments it was called with.
"""

from __future__ import annotations

from fakes import FakeModel

CALLS: list[tuple[str | None, str]] = []


class CustomModel(FakeModel):
    name = "custom_fake"


def build(checkpoint: str | None, *, device: str) -> CustomModel:
    CALLS.append((checkpoint, device))
    return CustomModel()


def not_an_adapter(checkpoint: str | None, *, device: str) -> object:
    return object()


def broken(checkpoint: str | None, *, device: str) -> object:
    raise RuntimeError("CUDA error: no kernel image is available\nfor execution on the device")
