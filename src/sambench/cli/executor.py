"""What ``sambench evaluate`` and ``sambench report`` do with the executor's options (declared in
:mod:`sambench.cli.options`): the :class:`~sambench.engine.executor.ExecutorOptions` of their
values, the run and its printed summary, and whether a report is built out of core."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # pragma: no cover
    from sambench.engine.config import RunConfig
    from sambench.engine.executor import ExecutorOptions


def options(
    executor: str,
    address: str | None,
    workers: int | None,
    gpus_per_worker: float,
    cpus_per_worker: float,
    encoder_batch: int | None,
    single_file: bool = True,
) -> ExecutorOptions:
    """The :class:`~sambench.engine.executor.ExecutorOptions` of the command line's values."""
    from sambench.engine.executor import ExecutorOptions

    return ExecutorOptions(
        executor=executor,
        address=address,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
        encoder_batch=encoder_batch,
        single_file=single_file,
    )


def run_and_print(cfg: RunConfig, out: Path, wait_lock: bool, opts: ExecutorOptions) -> None:
    """Run the evaluation, write the tables and print what was written and the DICE table:
    from the rows in memory (``--single-file``) or by grouped aggregation over the lazy dataset
    (``--no-single-file``, :mod:`sambench.analysis.lazy`)."""
    from sambench.analysis.summary import to_markdown
    from sambench.store.run_files import PROMPTS_NAME, TABLE_NAMES

    if opts.single_file:
        from sambench.analysis.summary import main_rows, paper_table, write_tables
        from sambench.engine.evaluate import evaluate

        results = evaluate(cfg, out, wait_lock=wait_lock, options=opts)
        write_tables(results, out / "tables")
        n, table = len(results), paper_table(main_rows(results), "dice")
    else:
        from sambench.analysis.lazy import paper_table_lazy, write_tables_lazy
        from sambench.engine.evaluate import evaluate_dataset

        with evaluate_dataset(cfg, out, wait_lock=wait_lock, options=opts) as ds:
            write_tables_lazy(ds, out / "tables")
            n, table = ds.count(), paper_table_lazy(ds, "dice")
    names = (*TABLE_NAMES, PROMPTS_NAME, "parts/_manifest.jsonl")
    written = [n for n in names if (out / n).exists()]
    typer.echo(f"{n} rows -> {out}: {', '.join(written)}; tables in {out / 'tables'}")
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(table))


def report_out_of_core(run_dir: Path, asked: bool) -> bool:
    """Whether ``sambench report`` builds out of core: when asked (``--out-of-core``), or
    automatically, with a note on stderr, for a run finished with ``--no-single-file`` (parts
    and manifest, no per-protocol file such as ``results.parquet``)."""
    from sambench.store.results_dataset import manifest_path
    from sambench.store.run_files import PARTS_DIR, TABLE_NAMES

    if asked:
        return True
    if any((run_dir / n).is_file() for n in TABLE_NAMES):
        return False
    from sambench.report.volumes import CONFIG_3D_NAME

    if (run_dir / CONFIG_3D_NAME).is_file():
        return False  # an evaluate-3d run: its parts hold 3D rows (the 3D report reads them)
    if not manifest_path(run_dir / PARTS_DIR).is_file():
        return False  # not a run folder of ours: the in-memory report names what is missing
    typer.echo(
        f"note: {run_dir} has no results.parquet (run with --no-single-file): building the "
        "out-of-core report (tables only, as with --out-of-core)",
        err=True,
    )
    return True
