"""``sambench prepare``: standardize one dataset (SPEC section 2) into a prepared folder.

Output (``OUT/<dataset>/``): ``images/`` and ``labels/`` PNGs named ``<dataset>_<case>_<slice>.png``,
``sambench-dataset.json`` (paper layout plus modality, source, settings; ``dataset.json`` in folders
prepared before, still read), ``manifest.parquet`` (one row per kept (image, object), columns
``MANIFEST_COLUMNS``), ``prepare_report.json``, ``roi/`` (regions of interest, when the source has
them) and ``.parts/`` (one Parquet per finished unit, a case or one channel of a case: the resume
checkpoints). Temporary files a killed run left behind are removed on start.

Cases are processed one at a time per worker (one volume, or one 4D frame, in memory), in parallel
across processes when ``workers > 1``. Every file is written to a temporary name then renamed.
A case's PNGs come first, then its part; a re-run skips the cases whose part exists and whose PNGs
are all present, and redoes the others. The manifest is rebuilt from the parts at the end.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sambench.data.describe import (
    DatasetDescription,
    describe_source,
    paper_case_slice,
    sanitize_case,
)
from sambench.data.manifest import manifest_frame, write_manifest
from sambench.data.pairs import CasePair, find_pairs
from sambench.data.prepare_state import (
    claim_dataset,
    dataset_json,
    mapping_for,
    part_is_complete,
    read_part,
    write_part,
)
from sambench.data.readers import DEFAULT_MAX_IMAGE_PIXELS, Slice2D, _read_2d, read_pair_slices
from sambench.data.records import (
    DATASET_JSON_NAME,
    LEGACY_DATASET_JSON_NAME,
    MANIFEST_NAME,
    ObjectRecord,
)
from sambench.data.roi import ROI_DIR, roi_png
from sambench.data.standardize import (
    MIN_PIXELS,
    LabelMapping,
    LabelValueError,
    auto_mapping,
    case_with_frame,
    image_id,
    standard_image,
    standardize_label,
)
from sambench.data.volumes3d import (
    PARTS3D_DIR,
    VolumeCollector,
    part3d_complete,
    write_part3d,
    write_volumes_manifest,
)
from sambench.data.zarr_volumes import DEFAULT_ZARR_ABOVE_MB, check_volume_format
from sambench.errors import DataError
from sambench.store.atomic import (
    remove_atomic_temps,
    write_json_atomic,
    write_png_atomic,
)
from sambench.store.runlock import RunLock, RunLockedError

PARTS_DIR = ".parts"
REPORT_NAME = "prepare_report.json"


@dataclass
class PrepareReport:
    """Counts of one ``prepare_dataset`` run (resumed cases included in every count).

    ``slices_dropped``/``objects_dropped``: reason -> count (``slice<=50px``, ``no object kept``,
    ``object<=50px``, ``filter:<name>``). ``bad_cases``: skipped cases (``--skip-bad``), each
    ``{"case", "path", "reason"}``. ``skipped_files``: files of the source left out without
    being a case (orphan labels, symlink loops, broken symlinks), each ``{"path", "reason"}``.
    ``planes``: the slicing plane and why -> number of cases (volumes only, e.g.
    ``"axial (isotropic 1 mm: default for MRI)": 1``).
    """

    dataset: str
    source: str
    out: str
    modality: str
    filters: dict[str, float] = field(default_factory=dict)
    cases_seen: int = 0
    cases_done: int = 0
    cases_resumed: int = 0
    slices_read: int = 0
    slices_kept: int = 0
    slices_dropped: dict[str, int] = field(default_factory=dict)
    objects_kept: int = 0
    objects_dropped: dict[str, int] = field(default_factory=dict)
    planes: dict[str, int] = field(default_factory=dict)
    objects_excluded: dict[str, int] = field(default_factory=dict)
    bad_cases: list[dict[str, str]] = field(default_factory=list)
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    temp_files_removed: int = 0
    window: list[float] | None = None
    seconds: float = 0.0

    def add_case(self, stats: dict[str, int]) -> None:
        """Add one case's counters (keys ``slices_read``, ``pairs_kept``, ``objects_kept``,
        ``slice:<reason>``, ``object:<reason>``)."""
        self.slices_read += stats.get("slices_read", 0)
        self.slices_kept += stats.get("pairs_kept", 0)
        self.objects_kept += stats.get("objects_kept", 0)
        for k, v in stats.items():
            kind, _, reason = k.partition(":")
            target = {
                "slice": self.slices_dropped,
                "object": self.objects_dropped,
                "plane": self.planes,
                "excluded": self.objects_excluded,
            }.get(kind)
            if target is not None:
                target[reason] = target.get(reason, 0) + v

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_text(self) -> str:
        """A short human-readable summary."""

        def reasons(d: dict[str, int]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "none"

        lines = [
            f"dataset {self.dataset} ({self.modality}) from {self.source} -> {self.out}",
            f"cases: {self.cases_seen} seen, {self.cases_done} prepared, "
            f"{self.cases_resumed} already done, {len(self.bad_cases)} skipped as bad",
            f"slices: {self.slices_read} read, {self.slices_kept} image/label pairs kept; "
            f"dropped: {reasons(self.slices_dropped)}",
            f"objects: {self.objects_kept} kept; dropped: {reasons(self.objects_dropped)}",
            f"filters: {', '.join(f'{k}={v}' for k, v in self.filters.items()) or 'off'}",
        ]
        if self.objects_excluded:
            lines.append(
                f"excluded structures (slices where > 50 px): {reasons(self.objects_excluded)}"
            )
        if self.planes:
            if len(self.planes) == 1:
                lines.append(f"plane: {next(iter(self.planes))}")
            else:
                each = (f"{k} for {v} case{'s' if v > 1 else ''}" for k, v in self.planes.items())
                lines.append(f"plane: {'; '.join(each)}")
        if self.window is not None:
            lines.append(f"window: level {self.window[0]:g}, width {self.window[1]:g}")
        if self.temp_files_removed:
            lines.append(f"removed {self.temp_files_removed} temporary file(s) of a killed run")
        lines += [f"  bad case {b['case']}: {b['reason']}" for b in self.bad_cases]
        if self.skipped_files:
            lines.append(f"skipped files: {len(self.skipped_files)} (not cases)")
            lines += [f"  {f['path']}: {f['reason']}" for f in self.skipped_files[:20]]
            if len(self.skipped_files) > 20:
                lines.append(f"  ... and {len(self.skipped_files) - 20} more (see {REPORT_NAME})")
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


@dataclass(frozen=True)
class _CaseTask:
    pair: CasePair
    desc: DatasetDescription
    root: Path  # the prepared root OUT
    resample_labels: bool = False
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
    volume_format: str = "auto"
    zarr_above_mb: float = DEFAULT_ZARR_ABOVE_MB
    allow_slice_gaps: bool = False


def _names(
    desc: DatasetDescription, case: str, frame: int | None, idx: int, tag: str = ""
) -> tuple[str, str, int]:
    """(manifest case, image id base, slice index) of one slice; ``tag`` (a channel name) ends
    the slice token, ``<dataset>_<case>_<slice>_<tag>``, so channels of one case stay apart."""
    if desc.paper_layout:
        parsed = paper_case_slice(desc.name, case)
        if parsed is not None:
            return parsed[0], case, parsed[2]  # the stem already is the image id
        case = sanitize_case(case)
    case = case_with_frame(case, frame)
    token = ("0" if idx < 0 else str(idx)) + (f"_{tag}" if tag else "")
    return case, image_id(desc.name, case, token), idx


def _process_case(task: _CaseTask) -> tuple[str, dict[str, int], int]:
    """Standardize one case, write its PNGs then its part; returns (case, stats, rows).

    On any error the PNGs this call wrote are removed again and the error propagates
    (``DataError`` naming the file for bad input).
    """
    desc, pair, root = task.desc, task.pair, task.root
    ds_dir = root / desc.name
    mapping = mapping_for(desc)
    stats: Counter[str] = Counter()
    rows: list[dict[str, object]] = []
    written: list[Path] = []
    any_fg, lo, hi = False, math.inf, -math.inf
    modality = pair.modality or desc.modality
    channel = "" if pair.channel is None else _channel_label(desc, pair.channel)
    vol3d: VolumeCollector | None = None  # the 3D form (volumes, not instance maps)
    try:
        slices = read_pair_slices(
            pair.image,
            pair.label,
            axis=desc.axis,
            replace_nonfinite=desc.replace_nonfinite,
            channel=pair.read_channel,
            resample_labels=task.resample_labels,
            max_image_pixels=task.max_image_pixels,
            allow_slice_gaps=task.allow_slice_gaps,
            label_parts=pair.label_parts,
        )
        roi: np.ndarray | None = None
        for s in slices:
            s = _exclude_and_threshold(s, desc, stats)
            if pair.roi is not None and roi is None:
                roi = _read_roi_source(pair, s, task.max_image_pixels)
            stats["slices_read"] += 1
            if s.plane is not None and stats["slices_read"] == 1:
                stats[f"plane:{s.plane.describe(modality)}"] = 1  # once per case
            lo, hi = min(lo, float(s.image.min())), max(hi, float(s.image.max()))
            any_fg = any_fg or bool(s.label.any())
            try:
                m = (
                    mapping
                    if (mapping is not None or desc.instance)
                    else auto_mapping(np.unique(s.label))
                )
                drop, pairs = standardize_label(s.label, None if desc.instance else m, desc.filters)
            except LabelValueError as e:
                where = (
                    ""
                    if s.slice_index < 0
                    else f" (slice {s.slice_index} along axis {s.slice_axis})"
                )
                raise DataError(pair.label, f"{e}{where}") from None
            if s.slice_axis >= 0 and m is not None:
                if vol3d is None:
                    case0 = _names(desc, pair.case, None, 0)[0]
                    vol3d = VolumeCollector(
                        root,
                        desc.name,
                        case0,
                        pair.tag,
                        pair.image,
                        pair.label,
                        modality,
                        desc.window,
                        task.volume_format,
                        task.zarr_above_mb,
                    )
                vol3d.add(s, m)
            if drop is not None:
                stats[f"slice:{drop}"] += 1
                continue
            case, base_id, idx = _names(desc, pair.case, s.frame, s.slice_index, pair.tag)
            image = None
            for p in pairs:
                for reason in p.dropped:
                    stats[f"object:{reason}"] += 1
                if not p.kept:
                    stats["slice:no object kept"] += 1
                    continue
                if image is None:
                    image = standard_image(
                        s.image, from_2d_file=s.slice_axis < 0, window=desc.window
                    )
                iid = base_id if p.part is None else f"{base_id}-p{p.part}"
                rel_img, rel_lab = f"{desc.name}/images/{iid}.png", f"{desc.name}/labels/{iid}.png"
                rel_roi = "" if roi is None else f"{desc.name}/{ROI_DIR}/{iid}.png"
                written += [root / rel_img, root / rel_lab]
                write_png_atomic(root / rel_img, image)
                write_png_atomic(root / rel_lab, p.label)
                if roi is not None:
                    written.append(root / rel_roi)
                    write_png_atomic(root / rel_roi, roi)
                stats["pairs_kept"] += 1
                stats["objects_kept"] += len(p.kept)
                for obj in p.kept:
                    name = (
                        desc.instance_name
                        if desc.instance
                        else (m.name[_source_value(m, obj.value)] if m else "")
                    )
                    rows.append(
                        ObjectRecord(
                            dataset=desc.name,
                            case=case,
                            slice_index=idx,
                            image_id=iid,
                            image_path=rel_img,
                            label_path=rel_lab,
                            object_name=name,
                            label_value=obj.value,
                            modality=modality,
                            height=int(p.label.shape[0]),
                            width=int(p.label.shape[1]),
                            spacing_x=float(s.spacing[0]),
                            spacing_y=float(s.spacing[1]),
                            spacing_z=float(s.spacing[2]),
                            slice_axis=s.slice_axis,
                            area=obj.area,
                            bbox_x_min=obj.bbox[0],
                            bbox_y_min=obj.bbox[1],
                            bbox_x_max=obj.bbox[2],
                            bbox_y_max=obj.bbox[3],
                            source_image=str(pair.image),
                            roi_path=rel_roi,
                            channel=channel,
                            plane=s.plane.plane if s.plane is not None else "",
                        ).to_row()
                    )
        if stats["slices_read"] and not any_fg:
            raise DataError(pair.label, "empty label: no foreground voxel in the whole case")
        if stats["slices_read"] and lo == hi:
            raise DataError(pair.image, f"constant image: every voxel is {lo:g}")
        if vol3d is not None:  # before the 2D part, which marks the case done
            write_part3d(ds_dir, pair.unit, vol3d.finish())
        write_part(ds_dir / PARTS_DIR / f"{pair.unit}.parquet", rows, dict(stats))
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        if vol3d is not None:
            vol3d.discard()  # NIfTI files and zarr stores, finished or being written
        raise
    return pair.unit, dict(stats), len(rows)


def _exclude_and_threshold(s: Slice2D, desc: DatasetDescription, stats: Counter[str]) -> Slice2D:
    """``label_threshold`` (source > t -> 1, else 0) then ``exclude`` (those source values become
    background) on one slice's label. An excluded structure with more than ``MIN_PIXELS`` pixels
    in a slice (one that would have been an object) counts once as ``excluded:<name>``."""
    label = s.label
    if desc.label_threshold is not None:
        label = (label > desc.label_threshold).astype(np.uint8)
    if desc.exclude:
        hit = np.isin(label, list(desc.exclude.values()))
        if hit.any():
            for name, value in desc.exclude.items():
                if int(np.count_nonzero(label == value)) > MIN_PIXELS:
                    stats[f"excluded:{name}"] += 1
            label = np.where(hit, 0, label)
    return s if label is s.label else dataclasses.replace(s, label=label)


def _drop_stale_case(root: Path, ds_dir: Path, unit: str, rows: pd.DataFrame) -> None:
    """Remove the PNGs a case's old part lists, then the part and its 3D part, before the case is
    redone: a volume cut in another plane names other slices, which would be left behind, and a
    redo that fails must not leave a part pointing at removed files."""
    for col in ("image_path", "label_path", "roi_path"):
        for rel in set(rows[col].astype(str)) - {""}:
            (root / rel).unlink(missing_ok=True)
    (ds_dir / PARTS_DIR / f"{unit}.parquet").unlink(missing_ok=True)
    (ds_dir / PARTS3D_DIR / f"{unit}.parquet").unlink(missing_ok=True)


def _channel_label(desc: DatasetDescription, c: int) -> str:
    return desc.channel_names[c] if c < len(desc.channel_names) else f"{c:04d}"


def _read_roi_source(pair: CasePair, s: Slice2D, max_pixels: int | None) -> np.ndarray:
    """The HxW uint8 ROI PNG array (0 / 255) of a 2D case; DataError for volumes or bad shapes."""
    assert pair.roi is not None
    image = s.image
    if s.slice_axis >= 0:
        raise DataError(pair.roi, "ROI masks are supported for 2D images only, not volumes")
    values = _read_2d(pair.roi, True, None, max_pixels)
    if values.shape != image.shape[:2]:
        raise DataError(
            pair.roi, f"ROI shape {values.shape} (H, W) differs from image shape {image.shape[:2]}"
        )
    return roi_png(values)


def _source_value(mapping: LabelMapping, pixel: int) -> int:
    for v, p in mapping.pixel.items():
        if p == pixel:
            return v
    raise KeyError(pixel)


def _run_tasks(
    tasks: list[_CaseTask], workers: int
) -> Iterator[tuple[_CaseTask, Future[tuple[str, dict[str, int], int]]]]:
    """Yield (task, finished future) as cases finish; in-process when ``workers == 1``."""
    if workers <= 1:
        for t in tasks:
            fut: Future[tuple[str, dict[str, int], int]] = Future()
            try:
                fut.set_result(_process_case(t))
            except Exception as e:
                fut.set_exception(e)
            yield t, fut
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = {pool.submit(_process_case, t): t for t in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    yield pending.pop(f), f
        finally:
            for f in pending:
                f.cancel()


def _dataset_lock(ds_dir: Path) -> RunLock:
    """The dataset folder's lock, taken: a second prepare of the same folder is refused
    (:class:`~sambench.store.runlock.RunLockedError` naming the lock file and its holder)."""
    lock = RunLock(ds_dir, "prepare")
    try:
        return lock.acquire()
    except RunLockedError as e:  # prepare has no --wait-lock: do not suggest it
        problem = str(e.problem).replace(" pass --wait-lock to wait,", "")
        raise RunLockedError(e.path, problem) from None


def prepare_dataset(
    source: Path,
    out: Path,
    *,
    config: Path | dict[str, Any] | None = None,
    modality: str | None = None,
    workers: int = 1,
    skip_bad: bool = False,
    progress: bool = True,
    window: str | None = None,
    channel: str | None = None,
    roi_dir: Path | None = None,
    resample_labels: bool = False,
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    volume_format: str = "auto",
    zarr_above_mb: float = DEFAULT_ZARR_ABOVE_MB,
    allow_slice_gaps: bool = False,
) -> PrepareReport:
    """Standardize the dataset at ``source`` into ``out/<dataset>/`` (SPEC section 2).

    ``config``: a dataset description (YAML/JSON, see ``describe``); without it the source's
    layout is auto-detected. ``modality`` overrides the description. ``workers > 1`` processes
    cases in parallel. Bad input raises ``DataError`` naming the file (already finished cases
    stay on disk); with ``skip_bad`` the case is recorded in the report instead. Re-running
    resumes: finished cases whose files exist are not redone. Returns the report (also written to
    ``out/<dataset>/prepare_report.json``).

    ``window``: "LEVEL,WIDTH" or a preset (``layouts.WINDOW_PRESETS``), CT windowing instead of
    min-max. ``channel``: index, name or "all" for multi-channel cases (default the first).
    ``roi_dir``: folder of region-of-interest masks (relative to ``source`` or absolute).
    ``resample_labels``: put a 3D label on another grid onto its image's (nearest neighbour)
    instead of refusing it. ``max_image_pixels``: largest 2D file accepted (None: no limit).
    ``volume_format``: the 3D form's storage, ``nifti``, ``zarr`` or ``auto`` (zarr for a volume
    whose uint8 size exceeds ``zarr_above_mb`` MB, 1 MB = 1e6 bytes); cases already prepared keep
    the format they were written in (see :mod:`sambench.data.zarr_volumes`).
    ``allow_slice_gaps``: read a DICOM series with a missing slice (uneven positions) or a file
    left out (truncated) with a warning instead of refusing it (DataError naming the series).
    """
    t0 = time.perf_counter()
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    if max_image_pixels is not None and max_image_pixels < 1:
        raise ValueError(f"max_image_pixels: expected >= 1 or None, got {max_image_pixels}")
    check_volume_format(volume_format, zarr_above_mb)
    desc = describe_source(
        Path(source), config, modality, window=window, channel=channel, roi_dir=roi_dir
    )
    root = Path(out)
    ds_dir = root / desc.name
    skipped: list[tuple[Path, str]] = []
    pairs, missing = find_pairs(desc, skipped)
    report = PrepareReport(
        desc.name, str(desc.source), str(root.resolve()), desc.modality, desc.filters.active()
    )
    report.cases_seen = len(pairs) + len(missing)
    report.skipped_files = [{"path": str(p), "reason": r} for p, r in skipped]
    for path, reason in missing:
        if not skip_bad:
            raise DataError(path, reason)
        report.bad_cases.append({"case": path.name, "path": str(path), "reason": reason})
    # one prepare per dataset folder: a second one refuses (it would delete the first one's
    # temporary files as left by a killed run)
    lock = _dataset_lock(ds_dir)
    try:
        claim_dataset(ds_dir, desc)
        report.temp_files_removed = len(remove_atomic_temps(ds_dir))
        report.window = None if desc.window is None else list(desc.window)

        from tqdm import tqdm

        todo, done_parts = [], {}
        for pair in pairs:
            part = read_part(ds_dir / PARTS_DIR / f"{pair.unit}.parquet")
            done = part is not None and part_is_complete(root, part[0])
            if part is not None and done and part3d_complete(root, ds_dir, pair.unit):
                done_parts[pair.unit] = part[0]
                report.add_case(part[1])
                report.cases_resumed += 1
            else:
                if part is not None:  # redone: its old files go first (an old plane names others)
                    _drop_stale_case(root, ds_dir, pair.unit, part[0])
                todo.append(
                    _CaseTask(
                        pair,
                        desc,
                        root,
                        resample_labels,
                        max_image_pixels,
                        volume_format,
                        zarr_above_mb,
                        allow_slice_gaps,
                    )
                )
        bar = tqdm(total=len(todo), desc=f"prepare {desc.name}", unit="case", disable=not progress)
        try:
            for task, fut in _run_tasks(todo, workers):
                bar.update(1)
                err = fut.exception()
                if err is not None:
                    if skip_bad and isinstance(err, DataError):
                        report.bad_cases.append(
                            {"case": task.pair.unit, "path": str(err.path), "reason": str(err)}
                        )
                        continue
                    raise err
                _, stats, _ = fut.result()
                report.add_case(stats)
                report.cases_done += 1
        finally:
            bar.close()

        frames = []
        for pair in pairs:
            part = read_part(ds_dir / PARTS_DIR / f"{pair.unit}.parquet")
            if part is not None:
                frames.append(part[0])
        manifest = manifest_frame(pd.concat(frames, ignore_index=True) if frames else [])
        write_manifest(ds_dir / MANIFEST_NAME, manifest)
        write_volumes_manifest(ds_dir, [p.unit for p in pairs])
        write_json_atomic(ds_dir / DATASET_JSON_NAME, dataset_json(desc, manifest, "complete"))
        legacy = ds_dir / LEGACY_DATASET_JSON_NAME
        if legacy.is_file():  # ours under the old name (claimed above): the new file replaces it
            legacy.unlink()
        report.seconds = time.perf_counter() - t0
        write_json_atomic(ds_dir / REPORT_NAME, report.to_dict())
        return report
    finally:
        lock.release()
