"""The annotation study (the paper's section 4.9 and Table 7): time and Human Correction Effort
(HCE) of people annotating with and without a model in the loop.

Input: the accepted objects of ``sambench annotate`` sessions
(:func:`sambench.store.annotation_sessions.load_session_objects`, one row per accepted object;
:func:`load_sessions` reads several sessions and checks they share one prepared folder) with the
HCE of each accepted mask against the ground truth added by :func:`with_hce`. Every other
function is a pure table function (DataFrames in, DataFrames out).

Definitions (``docs/annotation-report.md``):

- an *object* is one (dataset, image_id, label_value); an object accepted several times by the
  same annotator in the same mode counts once, with its last acceptance (:func:`latest_objects`);
- *time per object*: the mean of ``active_s`` (seconds the object was being worked on, as the
  annotation app logged it) over the accepted objects;
- *time per image*: per image whose every object was accepted, the sum of ``active_s`` of its
  objects, then the mean over those images (the paper gives it in minutes); an image left with
  1 of its 3 objects done is not a fast image and does not count;
- *time saved (%)*: ``100 * (1 - with_model / without_model)`` of the time per image;
- *HCE*: :func:`sambench.metrics.hce.human_correction_effort` of the accepted mask against the
  ground truth (DIS defaults), with its FP and FN parts; lower is better;
- the *paired test*: two-sided Wilcoxon signed-rank (``scipy.stats.wilcoxon``, defaults) over
  the objects one annotator accepted in both modes, on ``active_s`` and on ``hce``, on case means
  (the objects of one case, i.e. patient or volume, averaged per mode; the manifest's ``case``)
  and only with at least :data:`sambench.analysis.stats.MIN_CASES` cases (``unit="object"``
  tests the objects as if independent, for comparison).

Modes are ``"manual"`` (the annotator alone; the paper's "Human") and ``"model"`` (with the model
in the loop; the paper's "Human with SAM").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sambench.analysis.stats import CASE_KEYS, check_unit, wilcoxon_row, with_holm
from sambench.errors import DataError
from sambench.metrics.hce import human_correction_effort
from sambench.metrics.overlap import dice
from sambench.store.annotation_sessions import INTERACTION_KINDS, OBJECT_COLUMNS

MODES = ("manual", "model")
MODE_LABELS = {"manual": "without model", "model": "with model"}
OBJECT_KEYS = ("dataset", "image_id", "label_value")
#: Column added by :func:`with_hce`: the number of objects the manifest has in the object's image.
IMAGE_OBJECTS = "image_objects"
#: The columns of a session's objects (:data:`~sambench.store.annotation_sessions.OBJECT_COLUMNS`)
#: the report reads, in that order: all but the start time, the per-kind counts and the latency.
SESSION_COLUMNS = tuple(
    c
    for c in OBJECT_COLUMNS
    if c not in ("started_utc", "mean_latency_ms", *(f"n_{k}" for k in INTERACTION_KINDS))
)
#: The columns :func:`with_hce` adds.
QUALITY_COLUMNS = ("hce", "hce_fp", "hce_fn", "dice")
ALL_ANNOTATORS = "all"
MEAN_ROW = "Mean"


# ---------------------------------------------------------------- reading sessions


def check_session_objects(objects: pd.DataFrame, source: str | Path) -> None:
    """Refuse a table of session objects without the columns the report reads, or with a mode
    other than ``manual`` / ``model`` (a :class:`DataError` naming ``source``)."""
    missing = [c for c in SESSION_COLUMNS if c not in objects.columns]
    if missing:
        raise DataError(source, f"session objects lack the columns {', '.join(missing)}")
    bad = sorted(set(map(str, objects["mode"].unique())) - set(MODES))
    if bad:
        raise DataError(source, f"mode {bad[0]!r} is not one of {', '.join(MODES)}")


def load_sessions(session_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """The accepted objects of every session in ``session_dirs``, concatenated (columns of
    :func:`~sambench.store.annotation_sessions.load_session_objects`).

    Raises :class:`DataError` naming the folder when it is not a session (no or a malformed
    ``session.json``), when two sessions were made on different prepared datasets (their
    manifest fingerprints differ), or when no session holds an accepted object. A session with no
    accepted object is kept (it adds no row). ``prepared`` is the first session's folder.
    """
    from sambench.store.annotation_sessions import load_session_objects, read_session_info

    if not session_dirs:
        raise ValueError("sessions: expected at least one session folder")
    frames: list[pd.DataFrame] = []
    first: tuple[Path, str, str] | None = None  # (session, prepared, fingerprint)
    for d in map(Path, session_dirs):
        if not d.is_dir():
            raise DataError(d, "is not a folder; expected a `sambench annotate --out` session")
        info = read_session_info(d)
        if first is None:
            first = (d, info.prepared, info.manifest_fingerprint)
        elif info.manifest_fingerprint != first[2]:
            raise DataError(
                d,
                f"was made on the prepared dataset {info.prepared}, but {first[0]} on "
                f"{first[1]} (different manifests); a report compares sessions on one "
                "prepared dataset",
            )
        df = load_session_objects(d)
        check_session_objects(df, d)
        frames.append(df.assign(prepared=first[1]))
    out = pd.concat(frames, ignore_index=True)
    if out.empty:
        raise DataError(
            Path(session_dirs[0]),
            f"no accepted object in {len(session_dirs)} session(s): nothing to report",
        )
    return out


def _read_png(path: Path, what: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot read the {what} PNG ({e})") from e


def with_hce(
    objects: pd.DataFrame, manifest: pd.DataFrame, prepared_root: str | Path
) -> pd.DataFrame:
    """``objects`` plus ``hce``, ``hce_fp``, ``hce_fn`` (floats) and ``dice`` (%) of each
    accepted mask against its ground truth, and the manifest's ``case`` of each object (the unit
    of the paired tests).

    The accepted mask is the PNG at ``mask_path`` (uint8, 0/255 or 0/1; foreground = > 0), the
    ground truth ``label == label_value`` of the manifest's label PNG (paths relative to
    ``prepared_root``); both are restricted to the image's region of interest when the manifest
    names one (as the evaluation scores). Raises :class:`DataError` naming the file for an object
    that is not in the manifest, an unreadable mask or a mask of another size than its image.
    """
    root = Path(prepared_root)
    keys = list(OBJECT_KEYS)
    man = manifest[[*keys, "case", "label_path", "roi_path"]].drop_duplicates(keys)
    man = man.astype({"case": str})
    objects = objects.drop(columns=["case"], errors="ignore")
    man = man.astype({"label_value": int})
    df = objects.astype({"label_value": int}).merge(man, on=keys, how="left", validate="m:1")
    lost = df[df["label_path"].isna()]
    if not lost.empty:
        r = lost.iloc[0]
        raise DataError(
            r["mask_path"],
            f"object {r['image_id']} value {r['label_value']} of session {r['session']} is "
            f"not in the manifest of {root}",
        )
    cache: dict[str, np.ndarray] = {}

    def read(rel: str, what: str) -> np.ndarray:
        if rel not in cache:
            if len(cache) > 16:
                cache.clear()
            cache[rel] = _read_png(root / rel, what)
        return cache[rel]

    vals: dict[str, list[float]] = {c: [] for c in QUALITY_COLUMNS}
    for rec in df.to_dict("records"):
        gt: np.ndarray = np.asarray(
            read(str(rec["label_path"]), "label") == int(rec["label_value"])
        )
        pred = _read_png(Path(str(rec["mask_path"])), "accepted mask")
        if pred.ndim == 3:
            pred = pred[..., 0]
        if pred.shape != gt.shape:
            raise DataError(
                str(rec["mask_path"]),
                f"mask is {pred.shape[1]}x{pred.shape[0]} (WxH); its image {rec['image_id']} is "
                f"{gt.shape[1]}x{gt.shape[0]}",
            )
        pred = pred > 0
        if rec["roi_path"]:
            roi = read(str(rec["roi_path"]), "region-of-interest") > 0
            pred, gt = pred & roi, gt & roi
        h = human_correction_effort(pred, gt).as_dict()
        for c in ("hce", "hce_fp", "hce_fn"):
            vals[c].append(h[c])
        vals["dice"].append(dice(pred, gt))
    out = df.drop(columns=["label_path", "roi_path"])
    for c in QUALITY_COLUMNS:
        out[c] = np.asarray(vals[c], float)
    # how many objects each image has: its time counts only once every one is accepted
    per_image = man.groupby(["dataset", "image_id"]).size().rename(IMAGE_OBJECTS)
    return out.merge(per_image.reset_index(), on=["dataset", "image_id"], how="left")


# ---------------------------------------------------------------- tables


def latest_objects(objects: pd.DataFrame) -> pd.DataFrame:
    """One row per (annotator, mode, object): the last accepted (by ``accepted_utc``)."""
    keys = ["annotator", "mode", *OBJECT_KEYS]
    df = objects.sort_values("accepted_utc", kind="stable")
    return df.drop_duplicates(keys, keep="last").sort_values(keys).reset_index(drop=True)


def _per_image_seconds(objects: pd.DataFrame) -> pd.DataFrame:
    """Seconds per (annotator, mode, dataset, image_id): the sum of its objects' ``active_s``,
    for the images whose every object was accepted (``IMAGE_OBJECTS``, from :func:`with_hce`): an
    image with 1 of its 3 objects done would count as a fast image. Without that column (objects
    not through :func:`with_hce`) every image counts."""
    keys = ["annotator", "mode", "dataset", "image_id"]
    g = objects.groupby(keys, sort=True)
    out = g["active_s"].sum().rename("image_s").reset_index()
    if IMAGE_OBJECTS in objects.columns:
        done = (g.size() == g[IMAGE_OBJECTS].first()).to_numpy()
        out = out[done].reset_index(drop=True)
    return out


def annotation_summary(objects: pd.DataFrame) -> pd.DataFrame:
    """Per annotator and mode: counts, time and quality (the detailed table).

    ``objects``: :func:`with_hce` output (any number of sessions). Columns: annotator, mode,
    model (the model names of the mode's sessions, ``"+"``-joined), sessions, images, objects,
    seconds_per_image, minutes_per_image, seconds_per_object, interactions_per_object,
    mean_latency_ms (mean over objects with a logged latency), hce (mean), hce_std (ddof=1),
    hce_fp, hce_fn, dice (mean, %). Rows: annotators sorted, ``manual`` before ``model``.
    """
    df = latest_objects(objects)
    img = _per_image_seconds(df)
    rows = []
    for (ann, mode), g in df.groupby(["annotator", "mode"], sort=True):
        gi = img[(img["annotator"] == ann) & (img["mode"] == mode)]
        lat = g["mean_latency_ms"] if "mean_latency_ms" in g.columns else pd.Series(dtype=float)
        rows.append(
            {
                "annotator": ann,
                "mode": mode,
                "model": "+".join(sorted(map(str, g["model"].dropna().unique()))),
                "sessions": int(g["session"].nunique()),
                "images": len(gi),
                "objects": len(g),
                "seconds_per_image": float(gi["image_s"].mean()),
                "minutes_per_image": float(gi["image_s"].mean()) / 60.0,
                "seconds_per_object": float(g["active_s"].mean()),
                "interactions_per_object": float(g["n_interactions"].mean()),
                "mean_latency_ms": float(pd.to_numeric(lat, errors="coerce").mean()),
                "hce": float(g["hce"].mean()),
                "hce_std": float(g["hce"].std(ddof=1)),
                "hce_fp": float(g["hce_fp"].mean()),
                "hce_fn": float(g["hce_fn"].mean()),
                "dice": float(g["dice"].mean()),
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_m"] = out["mode"].map({m: i for i, m in enumerate(MODES)})
    return out.sort_values(["annotator", "_m"]).drop(columns="_m").reset_index(drop=True)


def time_saved_pct(without_model: float, with_model: float) -> float:
    """``100 * (1 - with_model / without_model)``; NaN when either is missing or the baseline
    is not > 0."""
    if not (np.isfinite(without_model) and np.isfinite(with_model)) or without_model <= 0:
        return float("nan")
    return 100.0 * (1.0 - with_model / without_model)


def table7(summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 7 layout from :func:`annotation_summary`: one row per annotator plus
    ``Mean`` (unweighted mean over the annotators' rows, as the paper's), columns annotator,
    human_hce, human_minutes_per_image (mode ``manual``), human_with_model_hce,
    human_with_model_minutes_per_image (mode ``model``), time_saved_pct (of the minutes per image;
    the Mean row's from its own minutes). An annotator without one of the modes has NaN there."""
    cols = {
        ("manual", "hce"): "human_hce",
        ("manual", "minutes_per_image"): "human_minutes_per_image",
        ("model", "hce"): "human_with_model_hce",
        ("model", "minutes_per_image"): "human_with_model_minutes_per_image",
    }
    rows = []
    for ann in sorted(map(str, summary["annotator"].unique())) if len(summary) else []:
        row: dict[str, object] = {"annotator": ann}
        for (mode, col), name in cols.items():
            hit = summary[(summary["annotator"] == ann) & (summary["mode"] == mode)]
            row[name] = float(hit[col].iloc[0]) if len(hit) else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows, columns=["annotator", *cols.values()])
    if len(out):
        mean = {"annotator": MEAN_ROW, **out[list(cols.values())].mean().to_dict()}
        out = pd.concat([out, pd.DataFrame([mean])], ignore_index=True)
    out["time_saved_pct"] = [
        time_saved_pct(a, b)
        for a, b in zip(
            out["human_minutes_per_image"], out["human_with_model_minutes_per_image"], strict=True
        )
    ]
    return out


def paired_objects(objects: pd.DataFrame) -> pd.DataFrame:
    """The objects each annotator accepted in both modes: one row per (annotator, object) with
    ``active_s_manual``, ``active_s_model``, ``hce_manual``, ``hce_model`` (from
    :func:`latest_objects`), and ``case`` when the objects have it."""
    df = latest_objects(objects)
    keys = ["annotator", *OBJECT_KEYS]
    vals = ["active_s", "hce"]
    case = ["case"] if "case" in df.columns else []
    a = df.loc[df["mode"] == "manual", [*keys, *case, "object_name", *vals]]
    b = df.loc[df["mode"] == "model", [*keys, *vals]]
    return a.merge(b, on=keys, suffixes=("_manual", "_model"), validate="one_to_one")


def paired_tests(pairs: pd.DataFrame, unit: str = "case") -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank tests (``scipy.stats.wilcoxon``, defaults) of with-model
    vs without-model over :func:`paired_objects`, on ``active_s`` and ``hce``, per annotator and
    (when there are several) over every annotator's pairs (annotator ``all``).

    ``unit="case"`` (default): per annotator, the pairs of one case (dataset, case) are averaged
    per mode and the test pairs the case means; the pooled row averages each case over every
    annotator (annotators of one case are not independent either). ``unit="object"``: the pairs
    themselves. Columns: annotator, metric, n (units: cases, or pairs), n_objects (pairs),
    mean_manual, mean_model, median_diff (median over the units of model - manual; negative =
    the model saved time / effort), statistic, p_value, test_note, p_holm (Holm-adjusted over
    every tested row: both metrics, every annotator and the pooled row). With fewer than
    ``MIN_CASES`` units, or when every difference is zero, there is no test: statistic and p are
    NaN and ``test_note`` says why.
    """
    check_unit(unit)
    if unit == "case" and "case" not in pairs.columns:
        raise ValueError(
            "pairs: no 'case' column (add it with with_hce), so no test by case; "
            "use unit='object' (objects as if independent)"
        )
    groups: list[tuple[str, pd.DataFrame]] = [
        (str(a), g) for a, g in pairs.groupby("annotator", sort=True)
    ]
    if len(groups) > 1:
        groups.append((ALL_ANNOTATORS, pairs))
    rows = []
    for ann, g in groups:
        for metric in ("active_s", "hce"):
            cols = [f"{metric}_manual", f"{metric}_model"]
            units = g.groupby(list(CASE_KEYS), sort=True)[cols].mean() if unit == "case" else g
            va = units[cols[0]].to_numpy(float)
            vb = units[cols[1]].to_numpy(float)
            # model - manual
            row = wilcoxon_row(
                "annotator", ann, "model", "manual", vb, va, unit=unit, n_objects=len(g)
            )
            rows.append(
                {
                    "annotator": ann,
                    "metric": metric,
                    "n": row["n"],
                    "n_objects": row["n_objects"],
                    "mean_manual": row["mean_b"],
                    "mean_model": row["mean_a"],
                    "median_diff": row["median_diff"],
                    "statistic": row["statistic"],
                    "p_value": row["p_value"],
                    "test_note": row["test_note"],
                }
            )
    cols = [
        "annotator",
        "metric",
        "n",
        "n_objects",
        "mean_manual",
        "mean_model",
        "median_diff",
        "statistic",
        "p_value",
        "test_note",
    ]
    return with_holm(pd.DataFrame(rows, columns=cols))


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Our Table 7 Mean row beside the paper's (``paper-table7-annotation.csv``): one row per
    quantity (HCE and minutes per image in each mode, time saved %, HCE reduction %), columns
    quantity, ours, paper, diff (ours - paper)."""

    def mean_row(t: pd.DataFrame, model_prefix: str) -> dict[str, float]:
        r = t[t["annotator"] == MEAN_ROW]
        if r.empty:
            return dict.fromkeys(("hm", "mm", "hw", "mw"), float("nan"))
        r0 = r.iloc[0]
        return {
            "hm": float(r0["human_hce"]),
            "mm": float(r0["human_minutes_per_image"]),
            "hw": float(r0[f"{model_prefix}_hce"]),
            "mw": float(r0[f"{model_prefix}_minutes_per_image"]),
        }

    o, p = mean_row(ours, "human_with_model"), mean_row(paper, "human_with_sam")
    rows = []
    for label, key in (
        ("HCE without model", "hm"),
        ("HCE with model", "hw"),
        ("minutes per image without model", "mm"),
        ("minutes per image with model", "mw"),
    ):
        rows.append((label, o[key], p[key]))
    rows.append(
        ("time saved (%)", time_saved_pct(o["mm"], o["mw"]), time_saved_pct(p["mm"], p["mw"]))
    )
    rows.append(
        ("HCE reduction (%)", time_saved_pct(o["hm"], o["hw"]), time_saved_pct(p["hm"], p["hw"]))
    )
    out = pd.DataFrame(rows, columns=["quantity", "ours", "paper"])
    out["diff"] = out["ours"] - out["paper"]
    return out


__all__ = [
    "MODES",
    "MODE_LABELS",
    "QUALITY_COLUMNS",
    "SESSION_COLUMNS",
    "annotation_summary",
    "check_session_objects",
    "latest_objects",
    "load_sessions",
    "paired_objects",
    "paired_tests",
    "side_by_side",
    "table7",
    "time_saved_pct",
    "with_hce",
]
