"""The dataset description: where images and labels are, how they pair, classes, modality.

A user writes a small YAML or JSON file (every key but ``images``/``labels`` optional)::

    name: KiTS                      # default: the source folder's name
    modality: CT                    # or --modality; or the paper layout's info.json "modality"
    images: imagesTr                # folder or glob, relative to the source folder
    labels: labelsTr
    pairing: {image_suffix: "_0000", label_suffix: ""}   # or {regex: '^(.*)_0000$', replace: '\\1'}
    classes: {Kidney: 1, Tumor: 2}  # class name -> source label value
    # instance: true                # instead of classes: every non-zero value is one instance
    # instance_name: Cell
    plane: null                     # axial, sagittal or coronal (null: chosen, see orientation)
    # axis: null                    # the same as a number: 0/1/2 = sagittal/coronal/axial
    replace_nonfinite: null         # e.g. 0.0 to replace NaN/Inf image voxels
    filters: {min_object_size: 100, max_components: 1, component_min_size: 10, max_dispersion: 3.0}

    window: abdomen                 # or [40, 400]: CT window (level, width) instead of min-max
    channel: null                   # multi-channel cases: index, channel name, or all
    roi: null                       # folder of region-of-interest masks (e.g. DRIVE's mask/)
    exclude: {Ureter: 3}            # source values treated as background, counted by name
    label_threshold: null           # e.g. 127: noisy JPEG masks, value > 127 -> 1, else 0
    # pairing: {key_regex: '(case_\\d+)/'}  pair by a regex group on the path (KiTS's folders)

Without a description, the first folder pair of ``layouts.FOLDER_PAIRS`` found (``images`` +
``labels``, ``imagesTr`` + ``labelsTr``, ``volumes`` + ``segs``, ...) pairs by stem; an MSD /
nnU-Net v2 ``SOURCE/dataset.json`` gives the class names and channel names, and nnU-Net channel
files ``<case>_0000``, ``<case>_0001`` ... are the channels of one case ``<case>``. When
``SOURCE/info.json`` exists (the paper repository's layout: ``"info" {id: name}``, ``"color"
{id: pixel value}``), the files are taken as already-standardized 2D PNGs named
``<dataset>_<case>_<slice...>.png`` and the classes are the info.json pixel values, kept as is.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sambench.data.layouts import (
    ROI_FOLDERS,
    find_folder_pair,
    parse_window,
    read_source_json,
    resolve_channels,
)
from sambench.data.orientation import CANONICAL, PLANE_AXIS, PLANES
from sambench.data.readers import IMAGE_2D_SUFFIXES, VOLUME_SUFFIXES
from sambench.errors import DataError

DESCRIPTION_KEYS = (
    "name",
    "modality",
    "images",
    "labels",
    "pairing",
    "classes",
    "instance",
    "instance_name",
    "axis",
    "plane",
    "replace_nonfinite",
    "filters",
    "window",
    "channel",
    "roi",
    "exclude",
    "label_threshold",
)
PAIRING_KEYS = ("image_suffix", "label_suffix", "regex", "replace", "key_regex")
FILTER_KEYS = ("min_object_size", "max_components", "component_min_size", "max_dispersion")
INFO_JSON = "info.json"
LABEL_FOLDERS = ("labels", "masks")
_SAFE = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(frozen=True)
class Filters:
    """Optional exclusion filters (SPEC 2, all off by default; see ``standardize.object_filters``).

    ``min_object_size``: drop objects with area < this (px). ``max_components``: drop objects with
    more than this many 8-connected components of at least ``component_min_size`` px.
    ``max_dispersion``: drop objects whose dispersion (RMS distance of the pixels from their
    centroid over that of a disc of equal area; 1.0 for a disc) exceeds this.
    """

    min_object_size: int | None = None
    max_components: int | None = None
    component_min_size: int = 1
    max_dispersion: float | None = None

    def active(self) -> dict[str, float]:
        """The filters that are on, name -> threshold (``component_min_size`` with its filter)."""
        on: dict[str, float] = {}
        if self.min_object_size is not None:
            on["min_object_size"] = self.min_object_size
        if self.max_components is not None:
            on["max_components"] = self.max_components
            on["component_min_size"] = self.component_min_size
        if self.max_dispersion is not None:
            on["max_dispersion"] = self.max_dispersion
        return on


@dataclass(frozen=True)
class DatasetDescription:
    """A validated dataset description.

    ``classes``: class name -> source label value (None: every non-zero value is ``label_<v>``,
    kept as is). ``paper_layout``: the source is the paper repository's layout (info.json): its
    classes' pixel values are kept and file names give case and slice.
    """

    name: str
    modality: str
    source: Path
    images: str
    labels: str
    pairing: dict[str, str] = field(default_factory=dict)
    classes: dict[str, int] | None = None
    instance: bool = False
    instance_name: str = "instance"
    axis: int | None = None  # canonical RAS axis of a ``plane:`` override: 0/1/2 = sag/cor/axial
    replace_nonfinite: float | None = None
    filters: Filters = Filters()
    paper_layout: bool = False
    window: tuple[float, float] | None = None
    channel: str | None = None
    channel_names: tuple[str, ...] = ()
    channel_modality: bool = False  # no modality given: each image's modality is its channel
    roi: str | None = None
    source_json: str | None = None  # "msd" / "nnunetv2" when SOURCE/dataset.json was read
    exclude: dict[str, int] | None = None  # name -> source value set to background (counted)
    # one binary file per structure: class name -> folder/glob of that structure's files; the
    # files of a case are merged into one label map (value: classes/exclude; higher value wins)
    label_parts: dict[str, str] | None = None
    label_threshold: float | None = None  # source label > threshold -> 1, else 0 (before classes)
    # Volumes are sliced in this canonical voxel order (sambench.data.orientation). A "later
    # field": folders prepared before it keep their settings hash, so 2D cases resume; a volume
    # case they hold has no recorded plane and is redone (prepare_state.part_is_complete).
    orientation: str = CANONICAL

    def fingerprint(self) -> str:
        """A hash of everything that changes the prepared output (not the source path).

        Fields added after the first release leave the hash unchanged at their defaults, so
        folders prepared before them still resume."""
        d = asdict(self)
        d.pop("source")
        for key, default in _LATER_FIELDS.items():
            if d.get(key) == default:
                d.pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def channel_mode(self) -> bool:
        """True when a 4D image's 4th axis holds channels (a channel was asked for, or the
        source's dataset.json lists several), not time frames."""
        return self.channel is not None or len(self.channel_names) > 1


_LATER_FIELDS: dict[str, object] = {
    "window": None,
    "channel": None,
    "channel_names": [],
    "channel_modality": False,
    "roi": None,
    "source_json": None,
    "orientation": CANONICAL,
    "exclude": None,
    "label_threshold": None,
    "label_parts": None,
}


def sanitize_case(case: str) -> str:
    """A case id safe inside ``<dataset>_<case>_<slice>``: runs of characters other than
    ``A-Za-z0-9-`` (including ``_``) become one ``-``; leading/trailing ``-`` are stripped."""
    safe = _SAFE.sub("-", case).strip("-")
    return safe or "case"


def file_stem(path: Path) -> str:
    """The name without its image suffix (``.nii.gz`` counts as one suffix; folders: the name)."""
    name = path.name
    for suffix in sorted((*VOLUME_SUFFIXES, *IMAGE_2D_SUFFIXES), key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_description_file(path: Path) -> dict[str, Any]:
    """The raw mapping of a YAML (``.yaml``/``.yml``) or JSON file; DataError when malformed."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "dataset description file is missing")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise DataError(path, f"cannot be parsed as YAML/JSON ({e})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a mapping with keys {', '.join(DESCRIPTION_KEYS)}")
    return data


def _check_keys(where: Path, what: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise DataError(
            where,
            f"unknown {what} key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}",
        )


def _int(where: Path, key: str, value: Any, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo):
        raise DataError(
            where,
            f"{key}: expected an integer{f' >= {lo}' if lo is not None else ''}, got {value!r}",
        )
    return value


def _parse_filters(where: Path, raw: Any) -> Filters:
    if raw is None:
        return Filters()
    if not isinstance(raw, dict):
        raise DataError(where, f"filters: expected a mapping with keys {', '.join(FILTER_KEYS)}")
    _check_keys(where, "filters", raw, FILTER_KEYS)
    disp = raw.get("max_dispersion")
    if disp is not None and (
        isinstance(disp, bool) or not isinstance(disp, int | float) or disp <= 0
    ):
        raise DataError(where, f"filters.max_dispersion: expected a positive number, got {disp!r}")
    mos, mc = raw.get("min_object_size"), raw.get("max_components")
    return Filters(
        min_object_size=None if mos is None else _int(where, "filters.min_object_size", mos, 1),
        max_components=None if mc is None else _int(where, "filters.max_components", mc, 1),
        component_min_size=_int(
            where, "filters.component_min_size", raw.get("component_min_size", 1), 1
        ),
        max_dispersion=None if disp is None else float(disp),
    )


def _parse_classes(where: Path, raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict) or not raw:
        raise DataError(where, "classes: expected a non-empty mapping class name -> label value")
    classes: dict[str, int] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise DataError(where, f"classes: class names must be non-empty strings, got {name!r}")
        classes[name] = _int(where, f"classes.{name}", value)
        if value == 0:
            raise DataError(
                where, f"classes.{name}: 0 is the background, expected a non-zero value"
            )
    values = list(classes.values())
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        raise DataError(where, f"classes: label value(s) {dup} given to several classes")
    return classes


def _read_info_json(path: Path) -> tuple[dict[str, int], str | None]:
    """(class name -> pixel value, modality or None) of a paper-layout ``info.json``."""
    try:
        data = json.loads(path.read_text())
        info, color = data["info"], data["color"]
        if set(info) != set(color):
            raise ValueError(f"'info' ids {sorted(info)} differ from 'color' ids {sorted(color)}")
        classes = {str(info[k]): int(color[k]) for k in sorted(info, key=int)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(
            path,
            f"expected the paper layout {{'info': {{id: name}}, 'color': {{id: pixel}}}} ({e})",
        ) from None
    bad = [v for v in classes.values() if not 1 <= v <= 255]
    if bad:
        raise DataError(path, f"pixel values {bad} outside 1..255")
    return _parse_classes(path, classes), data.get("modality")


def describe_source(
    source: Path,
    config: Path | dict[str, Any] | None = None,
    modality: str | None = None,
    *,
    window: str | None = None,
    channel: str | None = None,
    roi_dir: Path | None = None,
) -> DatasetDescription:
    """Validate the description of ``source`` (config file, else auto-detection).

    Modality: ``modality`` > config ``modality`` > info.json ``modality`` > the channel names of
    an MSD / nnU-Net ``dataset.json`` (each image's modality is its channel's name) > DataError
    saying how to give one. ``window`` ("LEVEL,WIDTH" or a preset), ``channel`` (index, name or
    "all") and ``roi_dir`` override the config's ``window``/``channel``/``roi``. Raises
    ``DataError`` naming the config/source and the allowed keys or values. ``config`` may also be
    an already-read mapping (a compiled recipe, ``sambench.data.recipes``); its errors then name
    ``config["_where"]`` (e.g. ``recipe KiTS19``), which is not a description key.
    """
    source = Path(source)
    if not source.is_dir():
        raise DataError(source, "source is not a folder; expected a dataset folder")
    raw: dict[str, Any] = {}
    where = source
    if isinstance(config, dict):
        raw = dict(config)
        where = Path(str(raw.pop("_where", "dataset description")))
        _check_keys(where, "dataset description", raw, DESCRIPTION_KEYS)
    elif config is not None:
        raw = read_description_file(Path(config))
        where = Path(config)
        _check_keys(where, "dataset description", raw, DESCRIPTION_KEYS)
    info_path = source / INFO_JSON
    paper = config is None and info_path.is_file()
    info_classes, info_modality = _read_info_json(info_path) if paper else (None, None)

    src_json = None if paper else read_source_json(source)
    images, labels = raw.get("images"), raw.get("labels")
    pair = find_folder_pair(source) if images is None and labels is None else None
    if pair is not None:
        images, labels = pair
    if images is None:
        images = "images"
        if not (source / images).is_dir():
            raise DataError(
                where,
                "no 'images' given and no known image folder (images/, imagesTr/, volumes/, img/, "
                "image/ with labels/, labelsTr/, segs/, seg/, mask/ ...); say where images are "
                "(images: ...)",
            )
    if labels is None:
        found = [f for f in LABEL_FOLDERS if (source / f).is_dir()]
        if not found:
            raise DataError(
                where,
                f"no 'labels' given and no {' or '.join(f + '/' for f in LABEL_FOLDERS)} folder; "
                "say where labels are (labels: ...)",
            )
        labels = found[0]
    label_parts: dict[str, str] | None = None
    if isinstance(labels, dict):  # one binary file per structure: {class name: folder or glob}
        if not labels or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise DataError(where, "labels: expected a folder/glob or {class name: folder/glob}")
        label_parts = dict(labels)
        labels = next(iter(labels.values()))
    if not isinstance(images, str) or not isinstance(labels, str):
        raise DataError(where, "images/labels: expected a folder or glob (a string)")

    channel_spec = channel if channel is not None else raw.get("channel")
    if channel_spec is not None and not isinstance(channel_spec, str | int):
        raise DataError(where, f"channel: expected an index, a name or all, got {channel_spec!r}")
    channel_names = src_json.channels if src_json is not None else ()
    if channel_spec is not None and channel_names:
        resolve_channels(where, str(channel_spec), channel_names)  # validate early
    mod = modality or raw.get("modality") or info_modality
    channel_modality = False
    if not mod and channel_names:
        idx = resolve_channels(
            where, None if channel_spec is None else str(channel_spec), channel_names
        )
        mod = "+".join(channel_names[i] for i in idx)
        channel_modality = True
    if not mod or not isinstance(mod, str):
        raise DataError(
            where,
            "modality unknown; give it with --modality NAME (e.g. CT, MRI), a 'modality' key in "
            "the dataset description, or a 'modality' field in info.json",
        )

    pairing = raw.get("pairing") or {}
    if not isinstance(pairing, dict):
        raise DataError(where, f"pairing: expected a mapping with keys {', '.join(PAIRING_KEYS)}")
    _check_keys(where, "pairing", pairing, PAIRING_KEYS)
    if ("regex" in pairing) != ("replace" in pairing):
        raise DataError(where, "pairing: 'regex' and 'replace' go together")
    for key in ("regex", "key_regex"):
        if key in pairing:
            try:
                compiled = re.compile(str(pairing[key]))
            except re.error as e:
                raise DataError(where, f"pairing.{key}: invalid regular expression ({e})") from None
            if key == "key_regex" and compiled.groups < 1:
                raise DataError(where, "pairing.key_regex: expected one group, e.g. '(case_\\d+)/'")
    exclude = None
    if raw.get("exclude") is not None:
        exclude = _parse_classes(where, raw["exclude"])
        both = sorted(set(exclude.values()) & set((raw.get("classes") or {}).values()))
        if both:
            raise DataError(where, f"exclude: label value(s) {both} are also in classes")
    thr = raw.get("label_threshold")
    if thr is not None and (
        isinstance(thr, bool) or not isinstance(thr, int | float) or not math.isfinite(thr)
    ):
        raise DataError(where, f"label_threshold: expected a number or null, got {thr!r}")

    instance = raw.get("instance", False)
    if not isinstance(instance, bool):
        raise DataError(where, f"instance: expected true or false, got {instance!r}")
    classes = info_classes
    if classes is None and src_json is not None and not instance:
        classes = _parse_classes(src_json.path, src_json.classes)
    if "classes" in raw:
        if instance:
            raise DataError(where, "give either 'classes' or 'instance: true', not both")
        classes = _parse_classes(where, raw["classes"])
    if label_parts is not None:
        if instance:
            raise DataError(where, "labels: one file per structure cannot be an instance map")
        if classes is None or "classes" not in raw:
            names = [n for n in label_parts if n not in (exclude or {})]
            classes = {n: i + 1 for i, n in enumerate(names)}
            both = sorted(set(classes.values()) & set((exclude or {}).values()))
            if both:
                raise DataError(where, f"exclude: give values other than 1..{len(names)}")
        known = set(classes) | set(exclude or {})
        unknown = [n for n in label_parts if n not in known]
        if unknown:
            raise DataError(where, f"labels: {unknown} in neither classes nor exclude")
    axis = raw.get("axis")
    if axis is not None and (isinstance(axis, bool) or axis not in (0, 1, 2)):
        raise DataError(
            where,
            f"axis: expected 0, 1 or 2 (canonical x, y, z: sagittal, coronal, axial) or null, "
            f"got {axis!r}",
        )
    plane = raw.get("plane")
    if plane is not None:
        if plane not in PLANE_AXIS:
            raise DataError(
                where, f"plane: expected one of {', '.join(PLANES)} or null, got {plane!r}"
            )
        if axis is not None and axis != PLANE_AXIS[plane]:
            raise DataError(where, f"plane: {plane} and axis: {axis} disagree; give one of them")
        axis = PLANE_AXIS[plane]
    rnf = raw.get("replace_nonfinite")
    if rnf is not None and (
        isinstance(rnf, bool) or not isinstance(rnf, int | float) or not math.isfinite(rnf)
    ):
        raise DataError(where, f"replace_nonfinite: expected a finite number or null, got {rnf!r}")
    win = parse_window(
        "--window" if window is not None else where,
        window if window is not None else raw.get("window"),
    )
    roi = str(roi_dir) if roi_dir is not None else raw.get("roi")
    if roi is not None and not isinstance(roi, str):
        raise DataError(where, f"roi: expected a folder or glob (a string), got {roi!r}")
    if roi is None:
        roi = next(
            (f for f in ROI_FOLDERS if f not in (images, labels) and (source / f).is_dir()), None
        )
    elif not (source / roi).is_dir():
        raise DataError(source / roi, "roi: folder is missing; expected a folder of ROI masks")
    name = raw.get("name") or source.resolve().name
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise DataError(where, f"name: expected a folder-safe dataset name, got {name!r}")
    return DatasetDescription(
        name=name,
        modality=mod,
        source=source.resolve(),
        images=images,
        labels=labels,
        pairing={k: str(v) for k, v in pairing.items()},
        classes=classes,
        instance=instance,
        instance_name=str(raw.get("instance_name", "instance")),
        axis=axis,
        replace_nonfinite=None if rnf is None else float(rnf),
        filters=_parse_filters(where, raw.get("filters")),
        paper_layout=paper,
        window=win,
        channel=None if channel_spec is None else str(channel_spec),
        channel_names=channel_names,
        channel_modality=channel_modality,
        roi=roi,
        source_json=None if src_json is None else src_json.kind,
        exclude=exclude,
        label_threshold=None if thr is None else float(thr),
        label_parts=label_parts,
    )


def paper_case_slice(dataset: str, stem: str) -> tuple[str, str, int] | None:
    """(case, slice token, slice index) of a paper-layout stem ``<dataset>_<case>_<slice...>``.

    ``6_Pancreas_10_43_0`` -> ("10", "43_0", 43); the slice index is the leading integer of the
    slice token (-1 when it has none). None when the stem does not start with ``<dataset>_``.
    """
    if not stem.startswith(dataset + "_"):
        return None
    rest = stem[len(dataset) + 1 :]
    case, _, slice_token = rest.partition("_")
    m = re.match(r"\d+", slice_token)
    return case, slice_token, int(m.group()) if m else -1
