"""``sambench evaluate-3d``: run registered 3D protocols over the prepared volumes; resumable.

A run folder holds ``config-3d.json`` (written first: the folder's marker and the settings a
resume must match), ``parts/part-NNNNNN.parquet`` (every row of the volumes finished, written
whole volume by whole volume with :class:`sambench.engine.results.ResultsStore`, keyed by
``image_id`` = the volume id), ``results3d.parquet`` once done (one row per (volume, object, model,
protocol, step); columns in docs/volumes.md) and, with ``save_masks``, ``masks/<protocol>/
<volume_id>/label<value>_step<k>.nii.gz`` on the source grid. A killed run redoes at most the
volumes of its unwritten buffer; finished volumes are skipped, so no row is duplicated.

Encode once per volume: the rows of a volume are made object by object, protocol by protocol,
from one :class:`~sambench.volumes.embeddings.SliceEmbeddings` (an LRU of ``embedding_budget_mb``
MiB, and ``cache_dir``'s on-disk cache): the union of the slices the protocols declare for every
object is encoded first, every other slice on first use, and no slice twice while it is held or
cached. Each row's ``encoder_passes`` counts the passes run while making it; the ``volume_*``
columns hold the volume's totals (:data:`VOLUME_ENCODER_COLUMNS`).
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sambench.engine.cache import EmbeddingCache
from sambench.engine.results import ResultsStore
from sambench.errors import DataError, OptionError
from sambench.metrics.columns3d import DICE, NSD, rename_row3d, upgrade_results3d
from sambench.metrics.volume import VOLUME_METRIC_NAMES
from sambench.models.base import PromptableModel
from sambench.models.volume_base import is_volume_model, model_kind
from sambench.prompts.strategies import PromptError
from sambench.store.atomic import write_json_atomic, write_parquet_atomic
from sambench.store.runfolder import ensure_run_folder
from sambench.store.runlock import RunLock
from sambench.volumes.class_prompts import CLASS_MAP_OPTION, check_targets, class_map_problem
from sambench.volumes.embeddings import (
    DEFAULT_BUDGET_MB,
    MIB,
    SliceEmbeddings,
    encoder_batch_for,
    sharing,
)
from sambench.volumes.io import load_volume_table, object_from_row, read_volume, write_mask_nifti
from sambench.volumes.masks import score_object
from sambench.volumes.native import TIME_CAP_OPTION, check_shape, open_volume, time_cap
from sambench.volumes.protocols._prompts import FIRST_PROMPTS
from sambench.volumes.starts import START_OPTION, check_start, start_of, start_problem
from sambench.volumes.types import ProtocolConfig, Volume3D, get_protocol, load_protocols

log = logging.getLogger(__name__)
CONFIG_NAME = "config-3d.json"
MODEL_INFO_KEY = "model_info"
"""config-3d.json's record of a native 3D model (licence of its weights, package, checkpoint)."""
NATIVE_PROTOCOLS = ("interactive-3d", "effort")
"""The protocols a native 3D model runs (the others prompt 2D slices)."""
RESULTS3D_NAME = "results3d.parquet"
MASKS_DIR = "masks"
_OBJECT_COLUMNS = ("object_name", "label_value", "voxel_count", "n_slices", "key_slice")
_VOLUME_COLUMNS = ("dataset", "case", "volume_id", "modality", "depth", "height", "width")
VOLUME_ENCODER_COLUMNS = (
    "volume_encoder_passes",
    "volume_slices",
    "volume_embed_seconds",
    "volume_embedding_peak_mb",
)
"""Per-volume totals written on every row of the volume: encoder passes run for the volume in
this run (0 when every embedding came from ``--cache-dir``), distinct slices whose embedding was
used, seconds spent encoding and reading the cache, and the most MiB of embeddings held at once."""
_RESUME_FREE = (
    "embedding_budget_mb",
    "cache_dir",
    MODEL_INFO_KEY,
)  # change no number: may differ on resume


@dataclass(frozen=True)
class Run3DConfig:
    """The settings of one ``evaluate-3d`` run (saved as ``config-3d.json``; a resume must match).

    ``protocols``: registered names run in turn on every object. ``nsd_tolerance_mm``: NSD
    tolerance (mm). ``assume_spacing``: (slice, row, column) mm for volumes without spacing.
    ``seed``: the base of every (volume, object, protocol) generator. ``cases``: ``"<dataset>/
    <case>"`` to keep (None: all); ``max_volumes``: the first N volume ids (sorted).
    ``embedding_budget_mb``: MiB (2**20 bytes) of slice embeddings held in memory per volume
    (0 with no ``cache_dir``: each protocol encodes for itself, the per-object path);
    ``cache_dir``: the on-disk embedding cache (``sambench evaluate``'s) or None. Neither changes
    a number: a resume may change them.
    """

    prepared: str
    model: str = "litemedsam"
    checkpoint: str | None = None
    device: str | None = None
    protocols: tuple[str, ...] = ("propagate",)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    nsd_tolerance_mm: float = 2.0
    empty: str = "worst"
    assume_spacing: tuple[float, float, float] | None = None
    save_masks: bool = False
    seed: int = 0
    cases: tuple[str, ...] | None = None
    max_volumes: int | None = None
    embedding_budget_mb: float = DEFAULT_BUDGET_MB
    cache_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["prepared"] = str(Path(self.prepared).resolve())  # the same folder from any cwd
        d["protocol"]["options"] = dict(self.protocol.options)
        d.pop("device")  # where it runs does not change the results
        return json.loads(json.dumps(d, default=list))


def _numbers(d: dict[str, Any]) -> dict[str, Any]:
    """A saved config without the fields that change no number (a resume may change them)."""
    return {k: v for k, v in d.items() if k not in _RESUME_FREE}


def validate(cfg: Run3DConfig) -> None:
    """Every bad option, before anything is written (OptionError naming it)."""
    if not cfg.protocols:
        raise OptionError("--protocol", "expected at least one protocol name")
    for name in cfg.protocols:
        get_protocol(name)
    if cfg.protocol.prompt not in FIRST_PROMPTS:
        raise OptionError(
            "--prompt", f"expected one of {list(FIRST_PROMPTS)}, got {cfg.protocol.prompt!r}"
        )
    t = cfg.nsd_tolerance_mm
    if not (isinstance(t, int | float) and math.isfinite(t) and t >= 0):
        raise OptionError("--nsd-tolerance-mm", f"expected a finite number >= 0 (mm), got {t!r}")
    if cfg.empty not in ("worst", "nan"):
        raise OptionError("--empty", f"expected 'worst' or 'nan', got {cfg.empty!r}")
    if cfg.max_volumes is not None and cfg.max_volumes < 1:
        raise OptionError("--max-volumes", f"expected >= 1, got {cfg.max_volumes}")
    if cfg.protocol.shift_range is not None:
        lo, hi = (float(v) for v in cfg.protocol.shift_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
            raise OptionError("--shift", f"expected LO,HI px with 0 <= LO <= HI, got {lo:g},{hi:g}")
    if cfg.protocol.steps < 0:
        raise OptionError("--steps", f"expected >= 0, got {cfg.protocol.steps}")
    if cfg.seed < 0:
        raise OptionError("--seed", f"expected an integer >= 0, got {cfg.seed}")
    if cfg.assume_spacing is not None:
        sp = tuple(cfg.assume_spacing)
        if len(sp) != 3 or not all(math.isfinite(float(v)) and float(v) > 0 for v in sp):
            raise OptionError("--assume-spacing", f"expected Z,Y,X mm, each > 0, got {sp}")
    b = cfg.embedding_budget_mb
    if isinstance(b, bool) or not (isinstance(b, int | float) and math.isfinite(b) and b >= 0):
        raise OptionError("--embed-budget-mb", f"expected a finite number >= 0 (MiB), got {b!r}")
    if (
        cfg.cache_dir is not None
        and Path(cfg.cache_dir).exists()
        and not Path(cfg.cache_dir).is_dir()
    ):
        raise OptionError("--cache-dir", f"{cfg.cache_dir} exists and is not a folder")
    _check_protocol_options(cfg)


def _agree_dsc(v: Any) -> str | None:
    ok = v is None or (not isinstance(v, bool) and isinstance(v, int | float) and 0 < v <= 1)
    return None if ok else "expected a number in (0, 1] or null"


#: the --protocol-option keys each built-in protocol reads, with a check of the value (None:
#: fine, else what was expected). A protocol registered elsewhere is not listed: its options
#: are not checked here.
BUILTIN_PROTOCOL_OPTIONS: dict[str, dict[str, Any]] = {
    "propagate": {},
    "slicewise-gt": {},
    "sam2-video": {},
    "interactive-3d": {
        "initial_box": lambda v: None if isinstance(v, bool) else "expected true or false",
        "agree_dsc": _agree_dsc,
        TIME_CAP_OPTION: lambda v: _time_cap_problem(v),
        START_OPTION: start_problem,
        CLASS_MAP_OPTION: class_map_problem,
    },
    "effort": {
        "initial_box": lambda v: None if isinstance(v, bool) else "expected true or false",
        "agree_dsc": _agree_dsc,
        TIME_CAP_OPTION: lambda v: _time_cap_problem(v),
        START_OPTION: start_problem,
        CLASS_MAP_OPTION: class_map_problem,
        "budgets": lambda v: _budgets_problem(v),
    },
}


def _budgets_problem(v: Any) -> str | None:
    from sambench.volumes.protocols.effort import budgets_problem

    return budgets_problem(v)


def _time_cap_problem(v: Any) -> str | None:
    try:
        time_cap(ProtocolConfig(options={TIME_CAP_OPTION: v}))
    except OptionError:
        return "expected seconds > 0"
    return None


def _check_protocol_options(cfg: Run3DConfig) -> None:
    """Each ``--protocol-option`` must be read by one of the protocols run (an unknown key
    would be ignored silently), with a valid value."""
    if any(name not in BUILTIN_PROTOCOL_OPTIONS for name in cfg.protocols):
        return  # a protocol registered elsewhere may read any key
    known = {k: f for name in cfg.protocols for k, f in BUILTIN_PROTOCOL_OPTIONS[name].items()}
    for key, value in dict(cfg.protocol.options).items():
        if key not in known:
            names = sorted(known) or ["none"]
            raise OptionError(
                "--protocol-option",
                f"{key!r} is not an option of {', '.join(cfg.protocols)} (known: "
                f"{', '.join(names)}; interactive-3d reads initial_box, agree_dsc, time_cap_s, "
                "start, class_map; effort also budgets)",
            )
        problem = known[key](value)
        if problem is not None:
            if key == CLASS_MAP_OPTION:
                raise OptionError("--class-map", problem)
            raise OptionError("--protocol-option", f"{key}: {problem}, got {value!r}")
    if CLASS_MAP_OPTION in cfg.protocol.options and start_of(cfg.protocol) != "class":
        raise OptionError("--class-map", "applies to --start-with class only")


def _rng(seed: int, volume_id: str, label_value: int, protocol: str) -> np.random.Generator:
    key = [seed, zlib.crc32(volume_id.encode()), label_value, zlib.crc32(protocol.encode())]
    return np.random.default_rng(key)


def _select(table: pd.DataFrame, cfg: Run3DConfig) -> pd.DataFrame:
    if cfg.cases is not None:
        keys = table["dataset"].astype(str) + "/" + table["case"].astype(str)
        unknown = sorted(set(cfg.cases) - set(keys))
        if unknown:
            raise OptionError(
                "--cases", f"{unknown[:5]} not found in {cfg.prepared} ('<dataset>/<case>')"
            )
        table = table[keys.isin(set(cfg.cases))]
    ids = sorted(table["volume_id"].unique())
    if cfg.max_volumes is not None:
        ids = ids[: cfg.max_volumes]
    return table[table["volume_id"].isin(set(ids))]


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple | dict):
        return json.dumps(v)
    return v


def _volume_rows(
    model: PromptableModel,
    rows: pd.DataFrame,
    cfg: Run3DConfig,
    out: Path,
    cache: EmbeddingCache | None = None,
) -> list[dict[str, Any]]:
    """Every row of one volume: each object, each protocol, each step, from one store of slice
    embeddings (the union of the slices the protocols declare encoded first)."""
    first = rows.iloc[0].to_dict()
    vol = read_volume(first, Path(first["_root"]), cfg.assume_spacing)
    records = [
        {str(k): v for k, v in r.items()}
        for r in rows.sort_values("label_value").to_dict("records")
    ]
    if is_volume_model(model):  # a native 3D model: the source volume, opened once
        open_volume(model, vol)  # type: ignore[arg-type]
        result = _object_rows(model, vol, records, cfg, out)
        none = dict.fromkeys(VOLUME_ENCODER_COLUMNS, 0.0)
        return [{**row, **none} for row in result]
    store = SliceEmbeddings(
        model,
        vol,
        budget_bytes=int(cfg.embedding_budget_mb * MIB),
        cache=cache,
        encoder_batch=encoder_batch_for(model),
    )
    if store.shares:
        needed: list[int] = []  # in the order of first use: object by object, protocol by protocol
        for rec in records:
            for name in cfg.protocols:
                spec = get_protocol(name)
                if spec.slices is not None:
                    needed += spec.slices(vol, object_from_row(rec), cfg.protocol)
        store.prefetch(needed)
    with sharing(store):
        result = _object_rows(model, vol, records, cfg, out)
    totals = dict(zip(VOLUME_ENCODER_COLUMNS, (store.encodes, len(store.slices), store.seconds,
                                              store.peak_bytes / MIB), strict=True))  # fmt: skip
    return [{**row, **totals} for row in result]


def _object_rows(
    model: PromptableModel,
    vol: Volume3D,
    records: list[dict[str, Any]],
    cfg: Run3DConfig,
    out: Path,
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for rec in records:
        obj = object_from_row(rec)
        base = {k: rec[k] for k in (*_VOLUME_COLUMNS, *_OBJECT_COLUMNS)}
        base.update(
            image_id=vol.volume_id,
            one_slice=obj.one_slice,
            spacing_z=vol.spacing[0],
            spacing_y=vol.spacing[1],
            spacing_x=vol.spacing[2],
            model=model.name,
            model_kind=model_kind(model),
            nsd_tolerance_mm=float(cfg.nsd_tolerance_mm),
        )
        for name in cfg.protocols:
            spec = get_protocol(name)
            rng = _rng(cfg.seed, vol.volume_id, obj.label_value, name)
            try:
                steps = spec.fn(model, vol, obj, cfg.protocol, rng)
            except PromptError as e:
                nan = {k: math.nan for k in VOLUME_METRIC_NAMES if k != "empty_prediction"}
                result.append(rename_row3d({**base, "protocol": name, "step": 0,
                               "status": "skipped", "skip_reason": f"prompt: {e}", **nan,
                               "empty_prediction": False, "n_slices_predicted": 0,
                               "seconds": math.nan}))  # fmt: skip
                continue
            for st in steps:
                m = score_object(
                    st.mask, vol, obj, nsd_tolerance_mm=cfg.nsd_tolerance_mm, empty=cfg.empty
                )
                row = {**base, "protocol": name, "step": st.step, "status": "ok",
                       "skip_reason": "", **m, "n_slices_predicted": st.n_slices_predicted,
                       "seconds": st.seconds}  # fmt: skip
                row.update({k: _scalar(v) for k, v in st.extras.items()})
                row = rename_row3d(row)  # the results' column names (metrics/columns3d.py)
                if cfg.save_masks:
                    rel = f"{MASKS_DIR}/{name}/{vol.volume_id}/label{obj.label_value}_step{st.step}.nii.gz"
                    write_mask_nifti(out / rel, st.mask, vol)
                    row["mask_path"] = rel
                result.append(row)
    return result


def evaluate_3d(
    cfg: Run3DConfig,
    out: Path | str,
    *,
    model: PromptableModel | None = None,
    flush_every: int = 4,
    wait_lock: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Run ``cfg.protocols`` with ``cfg.model`` (or ``model``) over the prepared volumes of
    ``cfg.prepared``; write and return ``results3d.parquet`` (see the module docstring).

    ``out`` must be new, empty or an ``evaluate-3d`` run folder with the same settings; the run
    holds the folder's lock throughout (a second run refuses, or waits with ``wait_lock``).
    """
    load_protocols()
    validate(cfg)
    table = _select(load_volume_table(cfg.prepared), cfg)
    if set(NATIVE_PROTOCOLS) & set(cfg.protocols) and start_of(cfg.protocol) == "class":
        pairs = table[["dataset", "object_name"]].drop_duplicates().astype(str)
        check_targets(pairs.itertuples(index=False, name=None), cfg.protocol.options)
    out = ensure_run_folder(out, "evaluate-3d")
    created = not out.exists()
    try:
        return _evaluate_3d_locked(cfg, out, table, model, flush_every, wait_lock, progress)
    except Exception:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # refused before anything was written (e.g. the model): leave nothing
        raise


def _evaluate_3d_locked(
    cfg: Run3DConfig,
    out: Path,
    table: pd.DataFrame,
    model: PromptableModel | None,
    flush_every: int,
    wait_lock: bool,
    progress: bool,
) -> pd.DataFrame:
    with RunLock(out, "evaluate-3d", wait=wait_lock):
        cfg_path = out / CONFIG_NAME
        saved = json.loads(cfg_path.read_text()) if cfg_path.is_file() else None
        now = _numbers(cfg.to_json())
        if saved is not None and _numbers(saved) != now:
            diff = sorted(k for k in now if saved.get(k) != now[k])
            raise OptionError(
                "--out",
                f"{out} holds an evaluate-3d run with other settings ({', '.join(diff)}); "
                "give another --out, or the same options to resume it",
            )
        if model is None:
            model = _build(cfg)
        for name in cfg.protocols:
            if is_volume_model(model) and name not in NATIVE_PROTOCOLS:
                raise OptionError(
                    "--protocol",
                    f"{name} prompts 2D slices and cannot run with {model.name} (a native 3D "
                    f"model); use {', '.join(NATIVE_PROTOCOLS)}",
                )
            req = get_protocol(name).requires
            why = None if req is None else req(model)
            if why is not None:
                raise OptionError("--protocol", f"{name} cannot run with {model.name}: {why}")
            if name in ("interactive-3d", "effort"):
                start_of(cfg.protocol)  # a contradiction with initial_box: refused up front
                check_start(model, cfg.protocol)  # a class start on a 2D model: refused too
        if is_volume_model(model):  # every volume must fit the model's crop: refuse up front
            for rec in table.drop_duplicates("volume_id").to_dict("records"):
                shape = (int(rec["depth"]), int(rec["height"]), int(rec["width"]))
                vid, src = str(rec["volume_id"]), str(rec["source_image"])
                check_shape(model, vid, src, shape)  # type: ignore[arg-type]
        saved_cfg = cfg.to_json()
        if is_volume_model(model):
            saved_cfg[MODEL_INFO_KEY] = model.info()  # type: ignore[attr-defined]
        write_json_atomic(cfg_path, saved_cfg)
        cache = None
        if cfg.cache_dir is not None:
            from sambench.engine.plan import embedding_signature

            cache = EmbeddingCache(cfg.cache_dir, embedding_signature(model))
        store = ResultsStore(out, flush_every=flush_every)
        done = store.done_image_ids()
        todo = [v for v in sorted(table["volume_id"].unique()) if v not in done]
        from tqdm.auto import tqdm

        for vid in tqdm(todo, desc="evaluate-3d", unit="volume", disable=not progress):
            rows = table[table["volume_id"] == vid]
            store.add_image(_volume_rows(model, rows, cfg, out, cache))
        store.flush()
        df = upgrade_results3d(store.read_parts())  # parts of an older version: old names
        if not df.empty:
            keys = ["volume_id", "label_value", "protocol", "step"]
            df = df.sort_values(keys, kind="stable").reset_index(drop=True)
        write_parquet_atomic(out / RESULTS3D_NAME, df)
        return df


def _build(cfg: Run3DConfig) -> PromptableModel:
    """The run's model: a native 3D model (:data:`~sambench.models.volume_registry.
    VOLUME_MODEL_NAMES`) or a 2D one (:func:`~sambench.models.registry.build_any`)."""
    from sambench.models.volume_registry import VOLUME_MODEL_NAMES, build_volume_model

    if cfg.model in VOLUME_MODEL_NAMES:
        return build_volume_model(cfg.model, cfg.checkpoint, device=cfg.device)  # type: ignore[return-value]
    from sambench.models.registry import build_any

    return build_any(cfg.model, cfg.checkpoint, device=cfg.device)


def load_results_3d(run_dir: Path | str) -> pd.DataFrame:
    """``results3d.parquet`` of a finished run (DataError naming it when missing)."""
    path = Path(run_dir) / RESULTS3D_NAME
    if not path.is_file():
        raise DataError(path, "is missing; expected a finished `sambench evaluate-3d` run folder")
    return upgrade_results3d(pd.read_parquet(path))


def summary_3d(df: pd.DataFrame, by: Sequence[str] = ("model", "protocol", "step")) -> pd.DataFrame:
    """Mean DSC, NSD, HD95 and seconds per group over the ``ok`` rows."""
    ok = upgrade_results3d(df)
    ok = ok[ok["status"] == "ok"]
    cols = [DICE, NSD, "hd95", "seconds", "n_slices_predicted"]
    return ok.groupby(list(by))[cols].mean().reset_index()


def encoder_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per volume: ``slices`` (distinct slices embedded), ``encoder_passes`` (run in
    the run that made the volume's rows; 0 when all came from ``--cache-dir``) and
    ``embed_seconds``; empty for rows written before these columns existed."""
    want = ("volume_slices", "volume_encoder_passes", "volume_embed_seconds")
    cols = [c for c in want if c in df.columns]
    if len(cols) < 3:
        return pd.DataFrame(columns=["volume_id", "slices", "encoder_passes", "embed_seconds"])
    per = df.dropna(subset=cols).groupby("volume_id", sort=True)[cols].first().reset_index()
    names = {"volume_slices": "slices", "volume_encoder_passes": "encoder_passes",
             "volume_embed_seconds": "embed_seconds"}  # fmt: skip
    return per.rename(columns=names)
