"""Open an annotation session: check the prepared folder and the session, build the model once."""

from __future__ import annotations

from pathlib import Path

from sambench.annotate.state import AnnotationState
from sambench.errors import OptionError
from sambench.store.annotation_sessions import MODELS


def build_state(
    prepared: Path, out: Path, model: str, annotator: str, device: str | None = None
) -> AnnotationState:
    """The :class:`~sambench.annotate.state.AnnotationState` of a session (model built once)."""
    from sambench.data.manifest import load_manifest
    from sambench.store.annotation_sessions import read_session_info

    if model not in MODELS:
        raise OptionError("--model", f"expected one of {', '.join(MODELS)}, got {model!r}")
    load_manifest(prepared)  # a bad PREPARED is refused before the model loads
    if (out / "session.json").exists():
        read_session_info(out)
    adapter = None
    cache = None
    if model != "none":
        from sambench.engine.cache import EmbeddingCache
        from sambench.engine.plan import embedding_signature
        from sambench.models.registry import build_model

        adapter = build_model(model, device=device or "cpu")
        cache = EmbeddingCache(out / "embeddings", embedding_signature(adapter))
    return AnnotationState(
        prepared, out, model=adapter, model_name=model, annotator=annotator, embedding_cache=cache
    )
