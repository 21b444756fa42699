"""``sambench evaluate --executor ray``: one model replica per Ray actor, batches of images.

The driver (this process) plans the run exactly as the local executor does
(:func:`~sambench.engine.plan.plan_run`: same images, same resume detection from the parts),
holds the run folder's lock, and hands the images left to do to the actors in batches of
``batch_images`` through :class:`ray.util.ActorPool` (an idle actor pulls the next batch). Each
actor builds the model once (``--model``, or a copy of the adapter instance given to
:func:`evaluate_on_ray`), reads its images ahead (:func:`~sambench.engine.image_work.prefetch`)
and writes the rows of its whole batch as ONE part, atomically, under a name fixed by the driver:
``parts/part-<first free number + batch index>-r<run token>.parquet``. So

- parts of two runs, or of the local executor, never collide, and the local executor resumes a
  Ray run folder (it reads every ``part-*.parquet``) and the reverse;
- a worker killed mid-batch has written nothing of that batch; Ray restarts the actor
  (``max_restarts``) and retries the batch on it (``max_task_retries``); a batch retried after
  its part was written rewrites the same file, so no row is ever duplicated;
- an error in the data (a bad image without ``--skip-bad``) is not retried: it stops the run
  with its own message, keeping the parts written so far (rerun to resume).

The run folder must be on a file system every Ray node sees (each actor checks that it sees the
driver's ``config.json`` before writing). The final table is built by the driver from the parts
(:meth:`ResultsStore.finalize`), sorted by the same keys as the local executor's.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sambench.engine.config import RunConfig
from sambench.engine.context import ImageTask
from sambench.engine.executor import ExecutorOptions
from sambench.engine.results import ResultsStore, finish_run
from sambench.errors import DataError, OptionError
from sambench.models.base import PromptableModel
from sambench.store.results_dataset import ResultsDataset
from sambench.store.runfolder import ensure_run_folder
from sambench.store.runlock import RunLock

log = logging.getLogger(__name__)


class RayWorkerError(RuntimeError):
    """A Ray worker died more often than it may be restarted (the parts written are kept)."""


def _check_answers(address: str, timeout: float) -> None:
    """Refuse a ``HOST:PORT`` that does not accept a TCP connection within ``timeout`` s."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise OptionError("--address", f"expected auto or HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise OptionError(
            "--address",
            f"no Ray cluster answers at {address} within {timeout:g} s ({e.strerror or e}); "
            "start one with `ray start --head` and pass the address it prints (or auto)",
        ) from None


def connect(options: ExecutorOptions) -> str:
    """Join (or start) the Ray cluster of ``options``; return its dashboard URL ('' if none).

    A process that already called ``ray.init`` keeps its cluster. ``address=None`` starts a
    local instance; ``"auto"`` joins the cluster of ``ray start`` on this machine; ``HOST:PORT``
    is first checked to answer within ``connect_timeout`` s (:class:`OptionError` otherwise).
    """
    import ray

    address = options.address
    if address is not None and address != "auto":
        _check_answers(address, options.connect_timeout)
    if ray.is_initialized():
        return _dashboard_url()
    try:
        ctx = ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as e:
        raise OptionError(
            "--address",
            f"cannot join the Ray cluster {address!r} ({e}); start one with "
            "`ray start --head` or omit --address to start a local one",
        ) from None
    return str(getattr(ctx, "dashboard_url", "") or "")


def _dashboard_url() -> str:
    try:
        from ray._private.worker import global_worker

        url = global_worker.node.address_info.get("webui_url") if global_worker.node else ""
    except Exception:  # an internal API: a URL is a convenience, never an error
        return ""
    return str(url or "")


def _original_error(exc: BaseException) -> BaseException:
    """The exception raised inside a Ray task or actor constructor (unwrapping Ray's)."""
    seen = 0
    while seen < 5:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException) and cause is not exc:
            exc, seen = cause, seen + 1
            continue
        break
    return exc


class EvalWorker:
    """A Ray actor: one model replica that evaluates batches of images into result parts.

    ``model``: an adapter instance (shipped pickled) or None to build ``config.model``;
    ``index``: the worker's number (a restarted actor keeps it; its pid changes).
    """

    def __init__(
        self,
        config: RunConfig,
        out: str,
        model: PromptableModel | None,
        tasks: Sequence[ImageTask] | None,
        encoder_batch: int | None,
        prefetch_depth: int,
        index: int = 0,
    ) -> None:
        from sambench.engine.image_work import ImageWork
        from sambench.engine.plan import build_any_model, make_cache
        from sambench.engine.tasks import build_tasks

        self.out = Path(out)
        self.model = model if model is not None else build_any_model(config)
        tasks = tasks if tasks is not None else build_tasks(config, self.out)
        batch = ExecutorOptions(encoder_batch=encoder_batch).resolved_encoder_batch(self.model)
        self.work = ImageWork(
            config, self.model, tasks, make_cache(config, self.model), encoder_batch=batch
        )
        self.prefetch_depth = prefetch_depth
        self.index = index
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def identity(self) -> dict[str, Any]:
        """Where this replica runs and the weights' hashes (for ``config.json``)."""
        from sambench.engine.plan import model_identity

        return {
            **model_identity(self.model),
            "host": self.host,
            "pid": self.pid,
            "device": str(getattr(self.model, "device", "cpu")),
        }

    def run_batch(
        self, part_number: int, tag: str, rows_by_image: dict[str, pd.DataFrame]
    ) -> dict[str, Any]:
        """Evaluate the images of ``rows_by_image`` (in order); write their rows as one part."""
        from sambench.engine.image_work import groups, prefetch

        if not (self.out / "config.json").is_file():
            raise DataError(
                self.out,
                f"run folder not visible from Ray node {self.host}: --out must be on a file "
                "system shared by every node of the cluster",
            )
        t0 = time.perf_counter()
        store = ResultsStore(
            self.out,
            flush_every=sys.maxsize,
            flush_seconds=math.inf,
            part_tag=tag,
            first_part=part_number,
        )
        loaded = prefetch(
            list(rows_by_image),
            lambda i: self.work.load(i, rows_by_image[i]),
            depth=self.prefetch_depth,
        )
        n_rows = 0
        for group in groups(loaded, self.work.encoder_batch):
            for rows in self.work.run(group):
                store.add_image(rows)
                n_rows += len(rows)
        store.flush()
        return {
            "images": len(rows_by_image),
            "rows": n_rows,
            "seconds": time.perf_counter() - t0,
            "host": self.host,
            "pid": self.pid,
            "worker": self.index,
        }


@dataclass
class WorkerStatus:
    """What the progress display shows of one worker (``pids``: every process it ran in; more
    than one means Ray restarted it)."""

    host: str = "?"
    pid: int = 0
    images: int = 0
    restarts: int = 0
    seconds: float = 0.0
    pids: set[int] = field(default_factory=set)

    def text(self, index: int) -> str:
        rate = self.images / self.seconds if self.seconds > 0 else 0.0
        restarted = f" restarted x{self.restarts}" if self.restarts else ""
        return f"w{index} {self.images} img {rate:.2f}/s{restarted}"


def worker_summary(status: Sequence[WorkerStatus]) -> str:
    """One line, the per-worker part of the progress display: ``w0 12 img 0.8/s | w1 ...``."""
    return " | ".join(s.text(i) for i, s in enumerate(status))


def _n_workers(options: ExecutorOptions, n_batches: int) -> int:
    import ray

    if options.workers is not None:
        return max(1, min(options.workers, n_batches))
    res = ray.cluster_resources()
    if options.gpus_per_worker > 0:
        n = int(res.get("GPU", 0) // options.gpus_per_worker)
        if n < 1:
            raise OptionError(
                "--gpus-per-worker",
                f"{options.gpus_per_worker:g} GPU per worker but the Ray cluster has "
                f"{res.get('GPU', 0):g} GPUs",
            )
    else:
        n = int(res.get("CPU", 1) // max(options.cpus_per_worker, 1e-9))
    return max(1, min(n, n_batches))


def evaluate_on_ray(
    config: RunConfig,
    out: Path | str,
    *,
    model: PromptableModel | None,
    tasks: Sequence[ImageTask] | None,
    options: ExecutorOptions,
    wait_lock: bool = False,
) -> pd.DataFrame | ResultsDataset:
    """:func:`sambench.engine.evaluate.evaluate` on Ray (see the module docstring).

    The cluster is joined before anything is written, so an address that does not answer
    leaves ``out`` untouched. Returns every row of the run, as the local executor does (the
    lazy dataset with ``options.single_file=False``).
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise OptionError(
            "--executor", "ray needs the Ray package: pip install 'sambench[ray]'"
        ) from None

    dashboard = connect(options)
    out = ensure_run_folder(out, "evaluate").resolve()
    config = config.with_absolute_paths()
    with RunLock(out, "evaluate --executor ray", wait=wait_lock):
        return _run_locked(config, out, model, tasks, options, dashboard, ray, ActorPool)


def _run_locked(
    config: RunConfig,
    out: Path,
    model: PromptableModel | None,
    tasks: Sequence[ImageTask] | None,
    options: ExecutorOptions,
    dashboard: str,
    ray: Any,
    actor_pool: Any,
) -> pd.DataFrame | ResultsDataset:
    from tqdm.auto import tqdm

    from sambench.engine.plan import model_identity, plan_run
    from sambench.engine.tasks import build_tasks

    plan_tasks = tasks if tasks is not None else build_tasks(config, out)
    remote_cls = ray.remote(EvalWorker).options(
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker,
        max_restarts=options.max_retries,
        max_task_retries=options.max_retries,
    )
    # planning needs the weights' hashes: from the given adapter, else from a first replica
    actors: list[Any] = []
    if model is None:
        actors.append(_start(remote_cls, config, out, None, tasks, options, 0))
        identity = _call(ray, actors[0].identity.remote())
    else:
        identity = model_identity(model)
    plan = plan_run(config, out, identity, plan_tasks)
    store = ResultsStore(out)
    todo = plan.todo
    b = options.batch_images
    batches = [todo[s : s + b] for s in range(0, len(todo), b)]
    if batches:
        n = _n_workers(options, len(batches))
        while len(actors) < n:
            actors.append(_start(remote_cls, config, out, model, tasks, options, len(actors)))
        if dashboard and config.progress:
            tqdm.write(f"Ray dashboard: {dashboard}")
        log.info("Ray: %d workers, %d batches of <= %d images", len(actors), len(batches), b)
        _dispatch(ray, actor_pool, actors, batches, plan.by_image, store.next_part, config, tqdm)
    return finish_run(store, options.single_file)


def _start(
    remote_cls: Any,
    config: RunConfig,
    out: Path,
    model: PromptableModel | None,
    tasks: Sequence[ImageTask] | None,
    options: ExecutorOptions,
    index: int,
) -> Any:
    return remote_cls.remote(
        config, str(out), model, tasks, options.encoder_batch, options.prefetch, index
    )


def _call(ray: Any, ref: Any) -> Any:
    """``ray.get(ref)``, re-raising the task's own error (:func:`_reraise`)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:
        _reraise(ray, e)


def _reraise(ray: Any, e: BaseException) -> None:
    """Raise the error of a Ray task as itself (a DataError stays a DataError, so the CLI
    prints its two lines) or, when the worker died beyond its restarts, a RayWorkerError."""
    orig = _original_error(e)
    if isinstance(orig, Exception) and not isinstance(orig, ray.exceptions.RayError):
        raise orig from None
    raise RayWorkerError(
        f"a Ray worker failed and could not be restarted ({e}); the parts written so far "
        "are kept: run the same command again to resume"
    ) from None


def _dispatch(
    ray: Any,
    actor_pool: Any,
    actors: list[Any],
    batches: list[list[str]],
    by_image: dict[str, pd.DataFrame],
    first_part: int,
    config: RunConfig,
    tqdm: Any,
) -> None:
    """Hand the batches to the actors (each idle actor pulls the next one) and show progress:
    overall images/s and ETA (tqdm), and per worker its images, rate and restarts."""
    tag = "r" + secrets.token_hex(4)
    status = [WorkerStatus() for _ in actors]
    pool = actor_pool(actors)
    bar = tqdm(
        total=sum(len(x) for x in batches),
        desc=f"evaluate {config.model} on Ray ({len(actors)} workers)",
        unit="img",
        disable=not config.progress,
    )
    for k, batch in enumerate(batches):
        rows = {i: by_image[i] for i in batch}
        pool.submit(lambda a, v: a.run_batch.remote(first_part + v[0], tag, v[1]), (k, rows))
    try:
        while pool.has_next():
            try:
                res = pool.get_next_unordered()
            except ray.exceptions.RayError as e:
                _reraise(ray, e)
            s = status[res["worker"]]
            s.pids.add(res["pid"])
            s.pid, s.host = res["pid"], res["host"]
            s.restarts = len(s.pids) - 1
            s.images += res["images"]
            s.seconds += res["seconds"]
            bar.update(res["images"])
            bar.set_postfix_str(worker_summary(status), refresh=True)
    finally:
        bar.close()
    log.info("Ray workers: %s", worker_summary(status))
