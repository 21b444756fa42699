"""Before/after comparison of a fine-tuned decoder on the held-out TEST cases (paper Fig. 18).

:func:`compare_before_after` evaluates the base model and the fine-tuned decoder through the normal
engine (:func:`sambench.engine.evaluate.evaluate`) on the test cases of the run's ``split.csv``,
both with ``multimask="off"`` (the decoder was trained on its single-mask output) and the run's
embedding cache, then writes, in ``out`` (default: the run folder):

- ``eval_before/``, ``eval_after/``: the two engine runs (resumable);
- ``compare.csv`` / ``compare.md``: per strategy and target (``<object>-<modality>``, plus an
  ``ALL`` row): ``n, n_cases, dice_before, dice_after, change, change_ci_lo, change_ci_hi,
  p_value, note``; ``change`` is the mean paired difference (after - before, DICE %) over the same
  objects, its CI a 95 % cluster bootstrap over the test cases within dataset
  (:func:`sambench.analysis.stats.case_bootstrap`, BCa) and ``p_value`` the two-sided Wilcoxon
  signed-rank test on case means (:func:`sambench.analysis.stats.paired_wilcoxon`). With fewer
  than :data:`~sambench.analysis.stats.MIN_CASES` cases both are NaN and ``note`` says why
  (``n = 1 case: too few``), as when every difference is 0. ``compare.md`` (and what
  ``finetune-compare`` prints) is :func:`readable`: the note in place of a CI;
- ``compare.png``: bar chart of the DICE change per target with the CI as error bars;
- ``training.png``: train / validation loss and validation DICE per epoch (from ``epochs.csv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sambench.analysis.stats import check_unit, interval, paired_wilcoxon
from sambench.analysis.summary import to_markdown
from sambench.engine.config import RunConfig
from sambench.errors import DataError
from sambench.finetune.config import FinetuneConfig
from sambench.finetune.split import SPLIT_NAME, case_keys, read_split
from sambench.finetune.train import DECODER_NAME, EPOCHS_NAME
from sambench.store.atomic import write_atomic, write_text_atomic

COMPARE_COLUMNS = (
    "strategy",
    "target",
    "n",
    "n_cases",
    "dice_before",
    "dice_after",
    "change",
    "change_ci_lo",
    "change_ci_hi",
    "p_value",
    "note",
)
ALL_TARGETS = "ALL"
_KEYS = ("dataset", "image_id", "label_value", "strategy")


def _usable(results: pd.DataFrame, what: str) -> pd.DataFrame:
    need = [*_KEYS, "case", "object_name", "modality", "selection", "status", "dice"]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValueError(f"{what} results: missing columns {missing}")
    df = results[(results["status"] == "ok") & (results["selection"] == "oracle")]
    if "shift_range" in df.columns:
        df = df[df["shift_range"].astype(str) == "none"]
    return df


def before_after_table(
    before: pd.DataFrame,
    after: pd.DataFrame,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
    unit: str = "case",
) -> pd.DataFrame:
    """Paired DICE change per (strategy, target) from two engine results tables.

    Objects are matched on (dataset, image_id, label_value, strategy), ``oracle`` selection, ok
    rows only (an object missing from either side is left out). Targets are
    ``<object_name>-<modality>``; an ``ALL`` row per strategy pools every object. The CI and the
    test are by ``unit``: ``"case"`` (cluster bootstrap over cases, Wilcoxon on case means) or
    ``"object"`` (objects as if independent; for comparison); below ``MIN_CASES`` units both
    are NaN and ``note`` says why. Groups are visited in sorted order and draw from ``rng`` in
    turn. Columns: :data:`COMPARE_COLUMNS`.
    """
    check_unit(unit)
    b, a = _usable(before, "before"), _usable(after, "after")
    m = b.merge(
        a[[*_KEYS, "dice"]], on=list(_KEYS), suffixes=("_before", "_after"), validate="one_to_one"
    )
    if m.empty:
        raise ValueError("before/after results: no object was evaluated ok in both runs")
    m["target"] = m["object_name"].astype(str) + "-" + m["modality"].astype(str)
    rows = []
    for strategy, g in m.groupby("strategy", sort=True):
        groups = [(t, gt) for t, gt in g.groupby("target", sort=True)] + [(ALL_TARGETS, g)]
        for target, gt in groups:
            d = (gt["dice_after"] - gt["dice_before"]).to_numpy(np.float64)
            lo, hi, note = interval(d, gt, unit, n_boot=n_boot, ci=ci, rng=rng)
            long = pd.concat(
                [
                    gt.assign(model="after", dice=gt["dice_after"]),
                    gt.assign(model="before", dice=gt["dice_before"]),
                ]
            )
            w = paired_wilcoxon(long, between="model", pairs=[("after", "before")], unit=unit)
            rows.append(
                {
                    "strategy": strategy,
                    "target": target,
                    "n": int(d.size),
                    "n_cases": int(gt[["dataset", "case"]].drop_duplicates().shape[0]),
                    "dice_before": float(gt["dice_before"].mean()),
                    "dice_after": float(gt["dice_after"].mean()),
                    "change": float(d.mean()),
                    "change_ci_lo": lo,
                    "change_ci_hi": hi,
                    "p_value": float(w["p_value"].iloc[0]),
                    "note": note or str(w["test_note"].iloc[0]),
                }
            )
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))


def readable(table: pd.DataFrame, unit: str = "case") -> pd.DataFrame:
    """:func:`before_after_table` for people: DICE to one decimal, the CI as ``lo to hi`` and
    the p-value as text, or in their place the ``note`` (e.g. ``n = 1 case: too few``)."""
    ci_col = f"95 % CI ({'by case' if unit == 'case' else 'by object'})"
    p_col = f"p (Wilcoxon, {'case means' if unit == 'case' else 'objects'})"
    rows = []
    for rec in table.to_dict("records"):
        shown = np.isfinite(rec["change_ci_lo"]) and np.isfinite(rec["change_ci_hi"])
        p = float(rec["p_value"])
        rows.append(
            {
                "strategy": rec["strategy"],
                "target": rec["target"],
                "objects": int(rec["n"]),
                "cases": int(rec["n_cases"]),
                "DICE before": f"{rec['dice_before']:.1f}",
                "DICE after": f"{rec['dice_after']:.1f}",
                "change": f"{rec['change']:+.1f}",
                ci_col: f"{rec['change_ci_lo']:+.1f} to {rec['change_ci_hi']:+.1f}"
                if shown
                else rec["note"],
                p_col: (f"{p:.2g}" if p < 0.001 else f"{p:.3f}") if np.isfinite(p) else rec["note"],
            }
        )
    return pd.DataFrame(rows)


def _save_figure(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    write_atomic(path, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight"), suffix=".png")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]


def plot_change(table: pd.DataFrame, path: Path | str) -> Path:
    """Bar chart (PNG) of the DICE change per target with its CI as error bars, one panel row
    per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = sorted(table["strategy"].unique())
    fig, axes = plt.subplots(
        len(strategies),
        1,
        figsize=(max(4.0, 0.6 * table["target"].nunique() + 2), 3.2 * len(strategies)),
        squeeze=False,
    )
    for ax, s in zip(axes[:, 0], strategies, strict=True):
        t = table[table["strategy"] == s]
        x = np.arange(len(t))
        change = t["change"].to_numpy(float)
        err = np.vstack(
            [change - t["change_ci_lo"].to_numpy(float), t["change_ci_hi"].to_numpy(float) - change]
        )
        err = np.nan_to_num(err, nan=0.0)  # no CI (too few cases): no error bar
        ax.bar(x, change, yerr=err, capsize=3, color=np.where(change >= 0, "tab:green", "tab:red"))
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, list(t["target"]), rotation=45, ha="right")
        ax.set_ylabel("DICE change (after - before, %)")
        ax.set_title(f"{s}: fine-tuned decoder vs base, test cases (95 % CI by case)")
    _save_figure(fig, Path(path))
    return Path(path)


def plot_training(epochs: pd.DataFrame, path: Path | str) -> Path:
    """Loss (train, validation) and validation DICE per epoch (PNG); epoch 0 = base decoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax1.plot(epochs["epoch"], epochs["train_loss"], "o-", label="train")
    ax1.plot(epochs["epoch"], epochs["val_loss"], "s-", label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("Dice + BCE loss")
    ax1.legend()
    ax2.plot(epochs["epoch"], epochs["val_dice"], "o-", color="tab:green")
    best = epochs[epochs["is_best"].astype(bool)]
    if not best.empty:
        last = best.iloc[-1]
        ax2.plot([last["epoch"]], [last["val_dice"]], "*", ms=14, color="tab:orange", label="best")
        ax2.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation DICE (%)")
    _save_figure(fig, Path(path))
    return Path(path)


def evaluate_into(config: RunConfig, folder: Path) -> pd.DataFrame:
    """:func:`~sambench.engine.evaluate.evaluate` into ``folder`` (``eval_before`` /
    ``eval_after`` of the fine-tuning run), with errors that name the folder, not options of
    ``sambench evaluate`` (``--out``, ``--wait-lock``) that ``finetune-compare`` does not have."""
    from sambench.engine.evaluate import evaluate
    from sambench.store.runfolder import ensure_run_folder
    from sambench.store.runlock import RunLockedError

    try:
        ensure_run_folder(folder, "evaluate")
    except DataError:
        raise DataError(
            folder,
            "holds files that are not a sambench evaluate run; finetune-compare writes its "
            "evaluations there: move them away and run it again",
        ) from None
    try:
        return evaluate(config, folder)
    except RunLockedError as e:
        raise DataError(
            folder,
            "another sambench command is writing this folder; run finetune-compare again when it "
            f"has finished (or delete {e.path} if that process is gone)",
        ) from None


def compare_before_after(
    run_dir: Path | str,
    out: Path | str | None = None,
    *,
    strategies: Sequence[str] = ("S5",),
    n_boot: int = 2000,
    seed: int = 0,
    max_images: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate base and fine-tuned decoder on the test cases of the fine-tuning run ``run_dir``.

    ``strategies``: prompt strategies of the engine (``S5``, the training prompt, by default; any
    of S2..S6). ``seed`` seeds the bootstrap. ``max_images`` keeps an evenly spaced subset of the
    test images (quick runs; None = all). Returns the comparison table (see the module
    docstring for the files written to ``out``, default ``run_dir``).
    """
    run = Path(run_dir)
    out_dir = Path(out) if out is not None else run
    cfg = FinetuneConfig.load(run)
    decoder = run / DECODER_NAME
    if not decoder.exists():
        raise FileNotFoundError(f"{decoder}: no fine-tuned decoder (did the run finish an epoch?)")
    cases = case_keys(read_split(run / SPLIT_NAME), "test")
    if not cases:
        raise ValueError(
            f"{run / SPLIT_NAME}: no test cases (test_fraction was {cfg.test_fraction}); "
            "fine-tune with a test fraction > 0 to compare on held-out cases"
        )

    base = RunConfig(
        prepared=cfg.prepared,
        model=cfg.model,
        checkpoint=cfg.checkpoint,
        model_config=cfg.model_config,
        strategies=tuple(strategies),
        multimask="off",
        datasets=cfg.datasets,
        cases=tuple(sorted(cases)),
        max_images=max_images,
        cache_dir=cfg.cache_dir or str(run / "embeddings"),
        device=device if device is not None else cfg.device,
        progress=progress,
    )
    before = evaluate_into(base, out_dir / "eval_before")
    after = evaluate_into(replace(base, decoder=str(decoder)), out_dir / "eval_after")
    table = before_after_table(before, after, n_boot=n_boot, rng=np.random.default_rng(seed))
    write_atomic(out_dir / "compare.csv", lambda p: table.to_csv(p, index=False), suffix=".csv")
    write_text_atomic(out_dir / "compare.md", to_markdown(readable(table)) + "\n")
    plot_change(table, out_dir / "compare.png")
    epochs_path = run / EPOCHS_NAME
    if epochs_path.exists():
        plot_training(pd.read_csv(epochs_path), out_dir / "training.png")
    return table
