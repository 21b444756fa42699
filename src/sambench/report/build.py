"""``sambench report RUN_DIR``: one self-contained HTML report plus every table and figure.

Output folder (default ``RUN_DIR/report``)::

    report.html            the page (figures embedded as base64 PNG; no external assets)
    tables/<name>.csv|.md  every table shown
    figures/<name>.png     every figure shown

The sections are built by :mod:`sambench.report.sections`; a section whose data are absent (no
S1 grid ablation, no shift rows, no prepared folder, ...) says so instead of failing, and a section
that raises is reported on the page (with the error) while the rest of the report is still written.

An ``evaluate-3d`` run folder (``results3d.parquet``, no 2D tables) gets the 3D sections of
:data:`sambench.report.volumes.VOLUME_SECTIONS` instead (tables ``tables/3d_*``, the DSC per
click step and the slicewise-gt vs propagate figures); a folder holding both kinds gets the 2D
report with the 3D section before the run details.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sambench.analysis.stats import check_unit
from sambench.engine.config import RunConfig
from sambench.metrics.columns3d import upgrade_results3d
from sambench.models.base import PromptableModel
from sambench.report import html as H
from sambench.report.aliases import AliasTable
from sambench.report.annotation import annotation_tables
from sambench.report.context import REPORT_NAME, SECTION_FAILED, ReportContext
from sambench.report.environment import environment_notes
from sambench.report.validate import (
    REQUIRED_COLUMNS,
    check_compared_run,
    has_tables,
    load_checked,
)
from sambench.store.atomic import write_text_atomic
from sambench.store.runfolder import REPORT_MARKER, ensure_run_folder

log = logging.getLogger(__name__)


def load_results(run_dir: Path) -> pd.DataFrame:
    """Every row of the finished run (its per-protocol tables, or its parts when it finished
    with ``--no-single-file``), checked (:mod:`sambench.report.validate`): an unfinished run, a
    missing column, a column of the wrong type or a repeated row is a DataError naming the file."""
    return load_checked(Path(run_dir))


def _join_runs(run_dir: Path, results: pd.DataFrame, others: Sequence[Path]) -> pd.DataFrame:
    """This run's results plus those of ``others``; each model may come from one run only."""
    seen = {str(m): run_dir for m in results["model"].unique()}
    frames = [results]
    for other in others:
        other = Path(other)
        check_compared_run(other)
        df = load_results(other)
        for m in map(str, df["model"].unique()):
            if m in seen:
                raise ValueError(
                    f"{other}: model {m!r} is already reported from {seen[m]}; compare runs of "
                    "different models (or evaluate both settings in one run)"
                )
            seen[m] = other
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else results


def _resolve_prepared(
    run_dir: Path, config: RunConfig | None, prepared: Path | None
) -> Path | None:
    if prepared is not None:
        return Path(prepared)
    if config is None:
        return None
    p = Path(config.prepared)
    for cand in (p, run_dir / p, run_dir.parent / p):
        if cand.is_dir():
            return cand
    return p


def _join_runs_3d(run_dir: Path, results3d: pd.DataFrame, others: Sequence[Path]) -> pd.DataFrame:
    """The rows of other evaluate-3d runs (other models, the same prepared folder) joined to this
    run's: one model per run. DataError naming the run that is not one, OptionError naming
    ``--compare-with`` for a model twice or another prepared folder."""
    import json

    from sambench.errors import DataError, OptionError
    from sambench.report.volumes import CONFIG_3D_NAME, RESULTS3D_NAME

    def prepared_of(run: Path) -> str | None:
        cfg = run / CONFIG_3D_NAME
        return json.loads(cfg.read_text()).get("prepared") if cfg.is_file() else None

    frames, models = [results3d], set(map(str, results3d["model"].unique()))
    for other in map(Path, others):
        if not (other / RESULTS3D_NAME).is_file():
            raise DataError(other / RESULTS3D_NAME, "missing: expected a finished evaluate-3d run "
                            "to compare with this evaluate-3d run")  # fmt: skip
        if prepared_of(other) != prepared_of(run_dir):
            raise OptionError("--compare-with", f"{other} evaluated {prepared_of(other)}, this "
                              f"run {prepared_of(run_dir)}: compare runs on the same volumes")  # fmt: skip
        df = pd.read_parquet(other / RESULTS3D_NAME)
        twice = models & set(map(str, df["model"].unique()))
        if twice:
            raise OptionError("--compare-with", f"{other} holds model(s) {sorted(twice)} "
                              "already in the report (one model per run)")  # fmt: skip
        models |= set(map(str, df["model"].unique()))
        frames.append(df)
    return pd.concat(frames, ignore_index=True, sort=False)


def _intro_3d(run_dir: Path, results3d: pd.DataFrame) -> str:
    models = ", ".join(sorted(map(str, results3d["model"].unique())))
    return (
        f"evaluate-3d run folder {run_dir}; model(s): {models}. Whole 3D objects: DICE (DSC) "
        "and NSD in %, HD95 in mm; the run's configuration is at the end."
    )


def build_report(
    run_dir: Path,
    out: Path | None = None,
    *,
    prepared: Path | None = None,
    rng_seed: int = 0,
    overlays: bool = True,
    model: PromptableModel | None = None,
    max_overlay_images: int = 24,
    compare_with: Sequence[Path] = (),
    aliases: Path | None = None,
    annotation_sessions: Sequence[Path] = (),
    ci_unit: str = "case",
    ledger: Path | None = None,
) -> Path:
    """Build the report of the run in ``run_dir``; return the path of the HTML file.

    - ``out``: output folder (default ``run_dir / "report"``), created if needed.
    - ``prepared``: the prepared data folder (default: ``prepared`` of the run's config.json);
      needed for object attributes and overlays, which are skipped with a note when it is missing.
    - ``rng_seed``: seeds the one :class:`numpy.random.Generator` of the bootstrap CIs.
    - ``ci_unit``: the unit of CIs and paired tests, ``"case"`` (a cluster bootstrap over cases
      within dataset, tests on case means; none below ``MIN_CASES`` cases) or ``"object"``
      (objects as if independent, for comparison); every caption names it.
    - ``ledger``: a training-data ledger file extending the package's (:mod:`sambench.data.ledger`);
      results on data a model was trained on are flagged in a section of their own.
    - ``overlays``: draw the best/worst cases (Fig. 9); this re-decodes at most
      ``max_overlay_images`` images with ``model`` (default: built from config.json; when that
      fails, e.g. a missing checkpoint, overlays are skipped with a note).
    - ``compare_with``: other run folders (other models or baselines on the same prepared data)
      whose results join this run's in every table, figure and paired test, one model per run;
      overlays are drawn for this run's model only.
    - ``aliases``: a file of extra ``ours,paper`` name aliases (CSV or YAML; see
      :mod:`sambench.report.aliases`), tried before the defaults.
    - ``annotation_sessions``: ``sambench annotate`` session folders; their study (Table 7,
      :mod:`sambench.report.annotation`) becomes a section. Read first: a folder that is not a
      session, or sessions of different prepared datasets, raise before anything is written.
    """
    from sambench.report.sections import ALL_SECTIONS, DETAIL_SECTIONS
    from sambench.report.volumes import CONFIG_3D_NAME, RESULTS3D_NAME, VOLUME_SECTIONS

    check_unit(ci_unit)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder does not exist")
    alias_table = AliasTable.with_file(aliases)
    annot = annotation_tables(annotation_sessions) if annotation_sessions else None
    results3d = (
        upgrade_results3d(pd.read_parquet(run_dir / RESULTS3D_NAME))  # an older run's names too
        if (run_dir / RESULTS3D_NAME).is_file()
        else None
    )
    if results3d is None and (run_dir / CONFIG_3D_NAME).is_file():
        from sambench.errors import DataError

        raise DataError(
            run_dir / RESULTS3D_NAME,
            "missing: this evaluate-3d run has not finished; run the same `sambench evaluate-3d "
            f"... --out {run_dir}` again to resume it, then report",
        )
    if results3d is not None and not has_tables(run_dir):
        # an evaluate-3d run only (its parts/ hold 3D rows, not an unfinished 2D run)
        results = pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    else:
        results = load_results(run_dir)  # checked: nothing is written for a bad run
    only_3d = results3d is not None and results.empty
    main_model = str(results["model"].iloc[0]) if len(results) else None
    if compare_with and only_3d:
        assert results3d is not None
        results3d = _join_runs_3d(run_dir, results3d, compare_with)
    else:
        results = _join_runs(run_dir, results, compare_with)
    out = ensure_run_folder(run_dir / "report" if out is None else Path(out), "report")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / REPORT_MARKER, "sambench report folder\n")
    config: RunConfig | None = None
    try:
        config = RunConfig.load(run_dir)
    except FileNotFoundError:
        pass
    env_line, env_warnings = environment_notes(config, compare_with)
    for w in env_warnings:
        log.warning("%s", w)
    ctx = ReportContext(
        run_dir=run_dir,
        out=out,
        results=results,
        config=config,
        prepared=_resolve_prepared(run_dir, config, prepared),
        rng=np.random.default_rng(rng_seed),
        overlays=overlays,
        model=model,
        max_overlay_images=max_overlay_images,
        main_model=main_model,
        aliases=alias_table,
        annotation=annot,
        results3d=results3d,
        ci_unit=ci_unit,
        compared_runs=tuple(map(Path, compare_with)),
    )
    if only_3d:
        plan = VOLUME_SECTIONS
    elif results3d is not None:  # both kinds of results in one folder: 3D before the details
        i = next(k for k, (a, _, _) in enumerate(ALL_SECTIONS) if a == "details")
        plan = ALL_SECTIONS[:i] + VOLUME_SECTIONS[:1] + ALL_SECTIONS[i:]
    else:
        plan = ALL_SECTIONS
    sections: list[H.Section] = []
    for anchor, title, builder in plan:
        empty_annotation = anchor == "annotation" and annot is None
        section = H.Section(anchor, title, folded=anchor in DETAIL_SECTIONS or empty_annotation)
        try:
            builder(ctx, section)
        except Exception as e:  # one broken section must not lose the whole report
            log.exception("report section %r failed", title)
            section.add(H.note_html(f"{SECTION_FAILED}: {type(e).__name__}: {e}"))
        sections.append(section)
    if not results.empty:
        from sambench.report.overlap import overlap_section, place_overlap

        place_overlap(sections, overlap_section(results, out, ledger), out, ledger)
    model_names = (
        ", ".join(sorted(map(str, results["model"].unique()))) if "model" in results else ""
    )
    compared = f" (with {len(compare_with)} compared run{'s' * (len(compare_with) > 1)})"
    page = H.page_html(
        f"sambench report: {model_names or run_dir.name}" + (compared if compare_with else ""),
        sections,
        intro=_intro_3d(run_dir, results3d)
        if only_3d and results3d is not None
        else f"Run folder {run_dir}; model(s): {model_names}. DICE, IoU and NSD in %, "
        "distances in pixels; 'oracle' = best candidate by DICE (the paper's numbers), "
        "'score' = highest predicted IoU. Findings first, then the paper's tables, then "
        "details; the run's configuration is at the end. "
        + f"Environment: {env_line}."
        + "".join(f" Warning: {w}." for w in env_warnings),
    )
    path = out / REPORT_NAME
    write_text_atomic(path, page)
    return path
