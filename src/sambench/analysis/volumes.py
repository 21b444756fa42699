"""Tables over ``evaluate-3d`` results (``results3d.parquet``): the paper's statistics per protocol.

Input: the tidy 3D results, one row per (volume, object, model, protocol, step) with at least
``dataset, case, volume_id, label_value, object_name, model, protocol, step, status`` and the
metric columns (``dice``, ``nsd`` in %, ``hd95`` in mm, ``seconds``; interactive-3d rows also
``challenge_dsc_01`` / ``challenge_nsd_01`` in 0..1, the CVPR 2025 definitions; names from
:mod:`sambench.metrics.columns3d`, whose :func:`~sambench.metrics.columns3d.upgrade_results3d`
every function applies first, so tables with the former names ``dsc`` / ``challenge_dsc`` /
``challenge_nsd`` work too). Only ``status == "ok"`` rows count. Every function returns a
DataFrame; nothing here reads files or imports a stage above analysis.

- :func:`final_rows`: each (volume, object, model, protocol)'s last step (the result of a
  protocol; step 0 for one-step protocols, the 5th click for interactive-3d).
- :func:`protocol_table`: mean with a bootstrap CI per (model, protocol), through
  :func:`sambench.analysis.stats.mean_with_ci`: by case (cluster bootstrap over cases within
  dataset) unless ``unit="object"``; no CI below :data:`~sambench.analysis.stats.MIN_CASES` cases.
- :func:`protocol_tests`: paired two-sided Wilcoxon tests between protocols (per model) or
  between models (per protocol) on the same objects, on case means unless ``unit="object"``,
  Holm-adjusted, through :func:`sambench.analysis.stats.paired_wilcoxon`.
- :func:`interactive_table`: per object, the challenge's DSC_AUC / NSD_AUC (trapezoid over the
  last 5 click steps, unit spacing: 0..4) and DSC_Final / NSD_Final, plus mean seconds per step.
- :func:`click_curve`: mean (with CI) of a metric per click step, per model.
- :func:`step_seconds_table`: mean model seconds per step (or cumulative seconds per budget),
  one row per model, one column per step, with the encoder passes the steps made.
- :func:`slicewise_vs_propagate`: per object the two protocols side by side (DSC, NSD, slices
  predicted) and the gap, what the paper's slice protocol hides.
- :func:`volume_dice_vs_3d`: the paper's 2D "volume DICE" (pooled over the evaluated slices
  only, :func:`sambench.analysis.stats.volume_dice`) beside the true 3D DSC of
  ``slicewise-gt`` over the whole volume (false positives on slices without the object count).
- :func:`object_attributes_3d` / :func:`attributes_table_3d`: per 3D object: volume (mL),
  surface complexity (surface area over that of the sphere of equal volume, >= 1) and intensity
  difference (as the 2D attribute, in 3D).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import integrate

from sambench.analysis.stats import mean_with_ci, paired_wilcoxon
from sambench.metrics.columns3d import CHALLENGE_DSC, CHALLENGE_NSD, DICE, upgrade_results3d

OBJECT3D_KEYS = ("dataset", "volume_id", "label_value")
_RUN_KEYS = ["dataset", "volume_id", "label_value", "model", "protocol"]
N_CLICKS = 5
BACKGROUND_MARGIN = 0.1


def _require(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"results3d: missing columns {missing}; present: {sorted(df.columns)}")


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    results = upgrade_results3d(results)
    _require(results, [*_RUN_KEYS, "step", "status"])
    return results[results["status"] == "ok"]


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The last step's row of each (dataset, volume_id, label_value, model, protocol)."""
    df = _ok(results).sort_values([*_RUN_KEYS, "step"], kind="stable")
    return df.groupby(_RUN_KEYS, sort=True).tail(1).reset_index(drop=True)


def _as_2d_layout(df: pd.DataFrame) -> pd.DataFrame:
    """3D rows in the column names the 2D statistics use (protocol as ``strategy``, the volume
    as ``image_id``, one ``selection``), so :mod:`sambench.analysis.stats` runs unchanged."""
    return df.assign(strategy=df["protocol"], image_id=df["volume_id"], selection="final")


def protocol_table(
    results: pd.DataFrame,
    metric: str = DICE,
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    ci: float = 0.95,
    unit: str = "case",
) -> pd.DataFrame:
    """Mean of ``metric`` over the final rows with a bootstrap CI per (model, protocol), by
    ``unit`` (:func:`~sambench.analysis.stats.mean_with_ci`).

    Columns: ``model, protocol, n, n_cases, mean, ci_lo, ci_hi, ci_note``."""
    df = _as_2d_layout(final_rows(results))
    out = mean_with_ci(
        df,
        ("model", "strategy"),
        metric,
        selection="final",
        n_boot=n_boot,
        ci=ci,
        rng=rng,
        unit=unit,
    )
    return out.rename(columns={"strategy": "protocol"})


def protocol_tests(
    results: pd.DataFrame,
    metric: str = DICE,
    between: str = "protocol",
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    unit: str = "case",
) -> pd.DataFrame:
    """Paired Wilcoxon tests on the final rows between protocols (``between="protocol"``, within
    each model) or between models (``between="model"``, within each protocol), matched on
    (dataset, volume_id, label_value), on case means (``unit="case"``) or objects. Columns as
    :func:`~sambench.analysis.stats.paired_wilcoxon` with ``strategy`` named ``protocol``."""
    if between not in ("protocol", "model"):
        raise ValueError(f"between: expected 'protocol' or 'model', got {between!r}")
    df = _as_2d_layout(final_rows(results))
    out = paired_wilcoxon(
        df,
        metric,
        "strategy" if between == "protocol" else "model",
        pairs,
        selection="final",
        unit=unit,
    )
    return out.rename(columns={"strategy": "protocol"})


def interactive_table(
    results: pd.DataFrame, protocol: str = "interactive-3d", n_clicks: int = N_CLICKS
) -> pd.DataFrame:
    """Per (dataset, volume_id, label_value, model): the CVPR 2025 summary of one object.

    ``DSC_AUC`` / ``NSD_AUC`` = ``cumulative_trapezoid(v[-n_clicks:], arange(n_clicks))[-1]``
    over the steps in order (the box step, when there is one, is left out as the challenge does),
    ``DSC_Final`` / ``NSD_Final`` = the last step, from ``challenge_dsc_01`` /
    ``challenge_nsd_01`` (0..1, so the AUCs are 0..4); ``steps``, ``seconds_mean`` (per step) and ``seconds_total``. Objects with fewer than
    ``n_clicks`` steps are left out."""
    df = _ok(results)
    df = df[df["protocol"] == protocol]
    _require(df, [CHALLENGE_DSC, CHALLENGE_NSD, "seconds"])
    rows = []
    keys = ["dataset", "volume_id", "label_value", "model"]
    for key, g in df.sort_values([*keys, "step"], kind="stable").groupby(keys, sort=True):
        if len(g) < n_clicks:
            continue
        d = g[CHALLENGE_DSC].to_numpy(np.float64)
        n = g[CHALLENGE_NSD].to_numpy(np.float64)
        x = np.arange(n_clicks)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "steps": len(g),
                "DSC_AUC": float(integrate.cumulative_trapezoid(d[-n_clicks:], x)[-1]),
                "NSD_AUC": float(integrate.cumulative_trapezoid(n[-n_clicks:], x)[-1]),
                "DSC_Final": float(d[-1]),
                "NSD_Final": float(n[-1]),
                "seconds_mean": float(g["seconds"].mean()),
                "seconds_total": float(g["seconds"].sum()),
            }
        )
    cols = [*keys, "steps", "DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final"]
    return pd.DataFrame(rows, columns=[*cols, "seconds_mean", "seconds_total"])


def step_seconds_table(
    results: pd.DataFrame, protocol: str = "interactive-3d", *, cumulative: bool = False
) -> pd.DataFrame:
    """Model seconds per step of ``protocol``: one row per model (``model``, ``model_kind`` when
    known, ``objects``, ``encoder_passes``: the mean over objects of the slice encodings the
    steps made, 0 for a native model), one column per step, the mean over objects of
    ``seconds`` (the step's own model time) or, with ``cumulative``, of ``cumulative_seconds``
    (the model time of every interaction up to that step, e.g. effort's budgets, whose
    intermediate interactions have no row). Columns ``step <k>``. Empty when a column is
    missing."""
    df = _ok(results)
    df = df[df["protocol"] == protocol]
    col = "cumulative_seconds" if cumulative else "seconds"
    if df.empty or col not in df.columns:
        return pd.DataFrame()
    keys = ["dataset", "volume_id", "label_value", "model"]
    wide = df.pivot_table(index=keys, columns="step", values=col, aggfunc="first")
    wide.columns = [f"step {int(k)}" for k in wide.columns]
    out = wide.groupby("model", sort=True).mean()
    out.insert(0, "objects", wide.groupby("model", sort=True).size())
    if "encoder_passes" in df.columns:
        passes = df.groupby(keys)["encoder_passes"].sum().groupby("model", sort=True).mean()
        out.insert(1, "encoder_passes", passes.reindex(out.index))
    if "model_kind" in df.columns:
        out.insert(0, "model_kind", df.groupby("model")["model_kind"].first().reindex(out.index))
    return out.reset_index()


def click_curve(
    results: pd.DataFrame,
    metric: str = DICE,
    protocol: str = "interactive-3d",
    *,
    rng: np.random.Generator,
    n_boot: int = 1000,
    unit: str = "case",
) -> pd.DataFrame:
    """Mean ``metric`` with a bootstrap CI (by ``unit``) per (model, step) of ``protocol``.

    Columns: ``model, step, n, n_cases, mean, ci_lo, ci_hi, ci_note``."""
    df = _ok(results)
    df = df[df["protocol"] == protocol]
    _require(df, [metric])
    lay = df.assign(strategy=df["step"].astype(int).astype(str).str.zfill(2), selection="final")
    out = mean_with_ci(
        lay, ("model", "strategy"), metric, selection="final", n_boot=n_boot, rng=rng, unit=unit
    )
    out["step"] = out.pop("strategy").astype(int)
    out = out.sort_values(["model", "step"], kind="stable").reset_index(drop=True)
    return out[["model", "step", "n", "n_cases", "mean", "ci_lo", "ci_hi", "ci_note"]]


def slicewise_vs_propagate(
    results: pd.DataFrame, a: str = "slicewise-gt", b: str = "propagate"
) -> pd.DataFrame:
    """Per object and model, protocols ``a`` and ``b`` side by side (final rows): ``dice_*``,
    ``nsd_*``, ``n_slices_predicted_*``, and ``dice_gap`` = dice_a - dice_b (points of DSC %)."""
    df = final_rows(results)
    cols = [DICE, "nsd", "n_slices_predicted"]
    _require(df, cols)
    keys = ["dataset", "volume_id", "label_value", "object_name", "model"]
    da = df.loc[df["protocol"] == a, [*keys, *cols]]
    db = df.loc[df["protocol"] == b, [*keys, *cols]]
    m = da.merge(db, on=keys, suffixes=(f"_{a}", f"_{b}"), validate="one_to_one")
    m["dice_gap"] = m[f"{DICE}_{a}"] - m[f"{DICE}_{b}"]
    return m.sort_values(keys, kind="stable").reset_index(drop=True)


def volume_dice_vs_3d(
    volume_dice_2d: pd.DataFrame,
    results3d: pd.DataFrame,
    strategy: str = "S5",
    selection: str = "score",
    protocol: str = "slicewise-gt",
) -> pd.DataFrame:
    """The paper's 2D volume DICE (a :func:`sambench.analysis.stats.volume_dice` table) beside
    the 3D DSC of ``protocol`` on the same objects, matched on (dataset, case, label_value,
    model). The defaults pair the 2D box strategy S5 with the highest-scored candidate (what a 3D
    protocol keeps: it has no ground truth to select with) and ``slicewise-gt`` (the same box per
    slice). Columns: keys, ``object_name``, ``volume_dice`` (2D), ``dice_3d``, ``gap`` =
    volume_dice - dice_3d, ``n_slices`` (2D: slices evaluated), ``n_slices_predicted`` (3D)."""
    need2 = ["dataset", "case", "label_value", "model", "strategy", "selection", "volume_dice"]
    missing = [c for c in need2 if c not in volume_dice_2d.columns]
    if missing:
        raise ValueError(f"volume_dice_2d: missing columns {missing}")
    v2 = volume_dice_2d[
        (volume_dice_2d["strategy"] == strategy) & (volume_dice_2d["selection"] == selection)
    ]
    if "shift_range" in v2.columns:
        v2 = v2[v2["shift_range"].isna() | (v2["shift_range"].astype(str) == "none")]
    f3 = final_rows(results3d)
    f3 = f3[f3["protocol"] == protocol]
    keys = ["dataset", "case", "label_value", "model"]
    m = v2[[*keys, "object_name", "volume_dice", "n_slices"]].merge(
        f3[[*keys, DICE, "n_slices_predicted"]].rename(columns={DICE: "dice_3d"}),
        on=keys,
        validate="one_to_one",
    )
    m["gap"] = m["volume_dice"] - m["dice_3d"]
    return m.sort_values(keys, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- 3D object attributes


def surface_area_mm2(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Surface area (mm^2) of a DxHxW bool mask: marching cubes at level 0.5 on the mask padded
    by one voxel (``skimage.measure.marching_cubes`` with ``spacing``, ``mesh_surface_area``)."""
    from skimage.measure import marching_cubes, mesh_surface_area

    m = np.pad(np.asarray(mask, dtype=np.float32), 1)
    verts, faces, _, _ = marching_cubes(m, level=0.5, spacing=tuple(float(s) for s in spacing))
    return float(mesh_surface_area(verts, faces))


def _background_3d(mask: np.ndarray) -> np.ndarray:
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    ext = hi - lo + 1
    d = np.floor(BACKGROUND_MARGIN * ext + 0.5).astype(int)
    region = np.zeros(mask.shape, dtype=bool)
    sl = tuple(
        slice(max(int(a - e), 0), min(int(b + e), n - 1) + 1)
        for a, b, e, n in zip(lo, hi, d, mask.shape, strict=True)
    )
    region[sl] = True
    return region & ~mask


def object_attributes_3d(
    image: np.ndarray, mask: np.ndarray, spacing: Sequence[float]
) -> dict[str, float | int]:
    """Attributes of one 3D object: ``voxels``, ``volume_ml`` (voxels x product(spacing) /
    1000), ``surface_mm2``, ``surface_complexity`` = surface / (pi^(1/3) (6 V)^(2/3)) (1 for a
    sphere, larger for convoluted shapes; the marching-cubes area of a binary mask has a
    staircase excess, so a voxelized sphere reads about 1.08 at 1 mm isotropic and 1.18 at
    2 x 0.5 x 0.5 mm), ``intensity_diff`` = |mean(object) - mean(background)| with the background the
    object's 3D bounding box grown by 10 % of its extent per side, minus the object (the 2D
    attribute's rule in 3D; NaN when empty).

    ``image``: DxHxW (uint8 normalized slices); ``mask``: DxHxW bool; ``spacing`` (z, y, x) mm.
    """
    m = np.asarray(mask, dtype=bool)
    img = np.asarray(image, dtype=np.float64)
    if m.ndim != 3 or img.shape != m.shape:
        raise ValueError(f"mask: expected DxHxW matching image {img.shape}, got {m.shape}")
    if not m.any():
        raise ValueError("mask: empty object")
    voxel_mm3 = float(np.prod([float(s) for s in spacing]))
    vol_mm3 = float(m.sum()) * voxel_mm3
    area = surface_area_mm2(m, spacing)
    sphere = np.pi ** (1 / 3) * (6 * vol_mm3) ** (2 / 3)
    bg = _background_3d(m)
    diff = float(abs(img[m].mean() - img[bg].mean())) if bg.any() else float("nan")
    return {
        "voxels": int(m.sum()),
        "volume_ml": vol_mm3 / 1000.0,
        "surface_mm2": area,
        "surface_complexity": area / sphere,
        "intensity_diff": diff,
    }


def attributes_table_3d(
    objects: Iterable[tuple[dict[str, object], np.ndarray, np.ndarray, Sequence[float]]],
) -> pd.DataFrame:
    """One row per object from ``(keys, image, mask, spacing)`` tuples (keys: e.g. dataset,
    volume_id, label_value), with :func:`object_attributes_3d`'s columns; join it to the results
    on the keys."""
    rows = [{**keys, **object_attributes_3d(img, m, sp)} for keys, img, m, sp in objects]
    return pd.DataFrame(rows)
