"""Paper Fig. 9: best and worst cases per target-modality and strategy, drawn over the image.

The results table stores prompts (JSON) and the chosen candidate index, not the predicted masks, so
the masks of the few cases shown are recomputed: each chosen image is encoded once (or its embedding
loaded from the run's cache) and every shown prompt decoded from that embedding; the mask is the
row's ``candidate_index`` among the candidates (the same multimask setting as the run).

Drawing conventions: ground truth contour red, prediction contour yellow, positive points green
stars, negative points blue stars, box green (XYXY, inclusive pixel coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sambench.analysis.robustness import unshifted
from sambench.analysis.summary import with_target_modality
from sambench.engine.context import prompts_from_json
from sambench.models.base import PromptableModel
from sambench.prompts.types import Prompts
from sambench.report.figures import strategy_sorted

#: Strategies whose rows carry prompts that can be re-decoded.
PROMPTED = ("S2", "S3", "S4", "S5", "S6")


@dataclass
class OverlayCase:
    """One panel: a result row (best or worst of its target-modality x strategy)."""

    row: dict[str, object]
    kind: str  # "best" or "worst"


def select_cases(
    results: pd.DataFrame, *, max_images: int = 24, selection: str = "oracle"
) -> list[OverlayCase]:
    """Best and worst row by DICE per (target-modality, strategy), oracle selection, unshifted
    ok rows of S2-S6 (first model in sorted order only).

    Target-modalities are taken in sorted order and added whole while the number of distinct
    images stays within ``max_images`` (at least one target is always taken when any exists).
    Ties in DICE are broken by (dataset, image_id, label_value) order.
    """
    need = {"strategy", "selection", "status", "dice", "prompt", "model"}
    if results.empty or not need <= set(results.columns):
        return []
    df = unshifted(results)
    df = df[
        (df["status"] == "ok")
        & (df["selection"] == selection)
        & (df["strategy"].isin(PROMPTED))
        & (df["prompt"].astype(str) != "")
    ]
    if df.empty:
        return []
    df = with_target_modality(df[df["model"] == sorted(df["model"].unique())[0]])
    df = df.sort_values(["dataset", "image_id", "label_value"], kind="stable")
    cases: list[OverlayCase] = []
    images: set[str] = set()
    for _, g in df.groupby("target_modality", sort=True):
        chosen: list[OverlayCase] = []
        for s in strategy_sorted(list(g["strategy"])):
            gs = g[g["strategy"] == s]
            dice = gs["dice"].to_numpy(dtype=float)
            best = {str(k): v for k, v in gs.iloc[int(np.nanargmax(dice))].items()}
            worst = {str(k): v for k, v in gs.iloc[int(np.nanargmin(dice))].items()}
            chosen += [OverlayCase(best, "best"), OverlayCase(worst, "worst")]
        new = images | {str(c.row["image_id"]) for c in chosen}
        if cases and len(new) > max_images:
            break
        images = new
        cases += chosen
    return cases


def _read(prepared: Path, rel: object) -> np.ndarray:
    from sambench.engine.image_work import read_png  # the engine's reader: clear errors per file

    return read_png(prepared / str(rel))


def predict_masks(
    cases: list[OverlayCase],
    model: PromptableModel,
    prepared: Path,
    *,
    multimask: bool | None = None,
    cache_dir: Path | None = None,
) -> list[np.ndarray]:
    """The HxW bool predicted mask of every case, re-decoded from the stored prompt.

    Each distinct image is encoded once (or loaded from ``cache_dir``'s embedding cache when the
    model's signature matches). The mask is candidate ``candidate_index`` (default 0).
    """
    from sambench.engine.cache import EmbeddingCache, image_hash
    from sambench.engine.plan import embedding_signature

    cache = EmbeddingCache(cache_dir, embedding_signature(model)) if cache_dir else None
    masks: list[np.ndarray] = []
    embeddings: dict[str, object] = {}
    for case in cases:
        image_id = str(case.row["image_id"])
        if image_id not in embeddings:
            image = _read(prepared, case.row["image_path"])
            emb = None
            key = image_hash(image) if cache is not None else ""
            if cache is not None:
                emb = cache.load(key, getattr(model, "device", "cpu"))
            embeddings[image_id] = emb if emb is not None else model.embed(image)
        prompts = prompts_from_json(str(case.row["prompt"]))
        if prompts is None:
            raise ValueError(f"results: row of {image_id} has no prompt to decode")
        pred = model.predict(embeddings[image_id], [prompts], multimask)  # type: ignore[arg-type]
        idx = pd.to_numeric(pd.Series([case.row.get("candidate_index")]), errors="coerce").iloc[0]
        k = 0 if pd.isna(idx) else int(idx)
        masks.append(np.asarray(pred.masks[0, min(k, pred.masks.shape[1] - 1)], dtype=bool))
    return masks


def draw_case(
    ax: object,
    image: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    prompts: Prompts | None,
    title: str = "",
) -> None:
    """Draw one panel on a matplotlib Axes: image (HxW or HxWx3 uint8), ground truth (HxW bool,
    red contour), prediction (HxW bool, yellow contour) and the prompts (points Nx2 (X, Y): label
    1 green star, 0 blue star; box XYXY green rectangle)."""
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
    for m, colour in ((gt, "red"), (pred, "yellow")):
        if m.any():
            ax.contour(m.astype(np.float32), levels=[0.5], colors=colour, linewidths=1.2)
    if prompts is not None:
        if prompts.box is not None:
            x0, y0, x1, y1 = (float(v) for v in prompts.box)
            ax.add_patch(
                Rectangle(
                    (x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, ec="lime", lw=1.2
                )
            )
        if prompts.points is not None and prompts.labels is not None:
            for lab, colour in ((1, "lime"), (0, "blue")):
                p = prompts.points[prompts.labels == lab]
                if len(p):
                    ax.scatter(
                        p[:, 0],
                        p[:, 1],
                        marker="*",
                        s=90,
                        c=colour,
                        edgecolors="white",
                        linewidths=0.5,
                    )
    ax.set_title(title, fontsize="small")
    ax.set_axis_off()


def overlay_figures(
    cases: list[OverlayCase], masks: list[np.ndarray], prepared: Path
) -> list[tuple[str, Figure]]:
    """One figure per target-modality: rows = strategies, columns = best, worst.

    Returns ``(target_modality, Figure)`` pairs in the order of ``cases``.
    """
    by_target: dict[str, list[tuple[OverlayCase, np.ndarray]]] = {}
    for c, m in zip(cases, masks, strict=True):
        by_target.setdefault(str(c.row["target_modality"]), []).append((c, m))
    out: list[tuple[str, Figure]] = []
    for tm, items in by_target.items():
        n_rows = math.ceil(len(items) / 2)
        fig = Figure(figsize=(6.0, 3.0 * n_rows), layout="constrained")
        for i, (c, m) in enumerate(items):
            ax = fig.add_subplot(n_rows, 2, i + 1)
            image = _read(prepared, c.row["image_path"])
            label = _read(prepared, c.row["label_path"])
            label = label[..., 0] if label.ndim == 3 else label
            gt = label == int(c.row["label_value"])  # type: ignore[call-overload]
            title = f"{c.row['strategy']} {c.kind}: DICE {float(c.row['dice']):.1f}\n{c.row['image_id']}"  # type: ignore[arg-type]
            draw_case(ax, image, gt, m, prompts_from_json(str(c.row["prompt"])), title)
        fig.suptitle(f"{tm} (red: ground truth, yellow: prediction)", fontsize="medium")
        out.append((tm, fig))
    return out
