"""Common dataset layouts found without a config: folder pairs, MSD / nnU-Net v2 ``dataset.json``,
nnU-Net channel suffixes (``case_0000``), region-of-interest folders, and CT window presets.

Medical Segmentation Decathlon (MSD) ``dataset.json``: ``"labels": {"0": "background", "1":
"edema", ...}`` (value -> name) and ``"modality": {"0": "FLAIR", "1": "T1w", ...}`` (channel ->
name); a multi-channel image is one 4D NIfTI whose 4th axis holds the channels. nnU-Net v2
``dataset.json``: ``"labels": {"background": 0, "edema": 1}`` (name -> value), ``"channel_names":
{"0": "T2", "1": "ADC"}`` and ``"file_ending"``; channel c of a case is its own file
``<case>_<cccc><file_ending>`` and the label is ``<case><file_ending>``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sambench.errors import DataError

SOURCE_JSON = "dataset.json"
"""The MSD / nnU-Net description file in a source folder (sambench writes its own description of
a prepared dataset under another name, ``records.DATASET_JSON_NAME``)."""

FOLDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("images", "labels"),
    ("images", "masks"),
    ("imagesTr", "labelsTr"),
    ("volumes", "segs"),
    ("volumes", "segmentations"),
    ("volumes", "labels"),
    ("img", "seg"),
    ("img", "gt"),
    ("img", "label"),
    ("img", "labels"),
    ("imgs", "gts"),
    ("image", "mask"),
    ("image", "label"),
    ("image", "labels"),
    ("images", "gt"),
    ("images", "segs"),
    ("images", "annotations"),
)
"""(images folder, labels folder) pairs looked for in a source folder, in this order."""

ROI_FOLDERS = ("roi", "fov", "mask")
"""Region-of-interest folders looked for when no ``roi`` is given (``mask`` only when it is not
the labels folder): e.g. DRIVE's ``mask/`` field-of-view images."""

ROI_SUFFIXES = ("", "_mask", "_roi", "_fov")
"""An image ``<stem>`` takes the ROI file ``<stem><suffix>`` (first found in this order)."""

CHANNEL_SUFFIX = re.compile(r"^(.*)_(\d{4})$")
"""nnU-Net channel suffix on an image stem: ``case_0001`` is channel 1 of case ``case``."""

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 160.0),
    "mediastinum": (50.0, 350.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
"""CT windows as (level, width) in HU (common radiology presets)."""


def find_folder_pair(source: Path) -> tuple[str, str] | None:
    """The first of ``FOLDER_PAIRS`` whose two folders exist in ``source``; None when none does."""
    for images, labels in FOLDER_PAIRS:
        if (source / images).is_dir() and (source / labels).is_dir():
            return images, labels
    return None


def parse_window(where: Path | str, value: Any) -> tuple[float, float] | None:
    """``"LEVEL,WIDTH"``, ``[level, width]`` or a preset name -> (level, width); None -> None.

    Raises ``DataError`` naming ``where`` (the option or config) with the presets for bad input.
    """
    if value is None:
        return None
    presets = ", ".join(f"{k} ({lv:g},{w:g})" for k, (lv, w) in WINDOW_PRESETS.items())
    expected = f"expected LEVEL,WIDTH (e.g. 40,400, width > 0) or a preset: {presets}"
    if isinstance(value, str):
        key = value.strip().lower()
        if key in WINDOW_PRESETS:
            return WINDOW_PRESETS[key]
        parts = key.split(",")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise DataError(where, f"window: {value!r}; {expected}")
    try:
        level, width = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise DataError(where, f"window: {value!r}; {expected}") from None
    if not (math.isfinite(level) and math.isfinite(width) and width > 0):
        raise DataError(where, f"window: {value!r}; {expected}")
    return level, width


@dataclass(frozen=True)
class SourceJson:
    """What an MSD / nnU-Net v2 ``dataset.json`` says: ``kind`` "msd" or "nnunetv2",
    ``classes`` name -> label value (background left out), ``channels`` names by channel index."""

    path: Path
    kind: str
    classes: dict[str, int]
    channels: tuple[str, ...]


_MSD_KEYS = (
    "modality",
    "channel_names",
    "numTraining",
    "training",
    "tensorImageSize",
    "file_ending",
)
"""Keys that make a ``dataset.json`` an MSD / nnU-Net v2 description (besides ``labels``)."""


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_source_json(source: Path) -> SourceJson | None:
    """The MSD / nnU-Net v2 ``dataset.json`` of ``source``; None when absent or not of that kind.

    A sambench description of a prepared dataset under the old name (``settings``) or a JSON file
    with none of the MSD / nnU-Net keys is not one. Malformed labels/channels (``labels``
    missing, a list, a string, ...) raise ``DataError`` naming the file and the field.
    nnU-Net region-based labels (a list of values for one name) are not supported.
    """
    path = source / SOURCE_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot be parsed as JSON ({e})") from None
    if not isinstance(data, dict) or "settings" in data:  # settings: sambench's own file
        return None
    raw = data.get("labels")
    if not isinstance(raw, dict):
        if "labels" not in data and not any(k in data for k in _MSD_KEYS):
            return None  # some other JSON file
        got = "missing" if "labels" not in data else f"a {type(raw).__name__} ({_short(raw)})"
        raise DataError(
            path,
            f'labels: {got}; expected a mapping {{"0": "background", "1": name, ...}} (MSD) or '
            '{"background": 0, name: 1, ...} (nnU-Net v2)',
        )
    classes: dict[str, int] = {}
    kind = "nnunetv2" if "channel_names" in data else "msd"
    try:
        for k, v in raw.items():
            if isinstance(v, list):
                raise DataError(
                    path,
                    f"labels.{k}: region-based label {v}; expected one value per name (write a "
                    "config with 'classes' instead)",
                )
            if isinstance(v, str) and str(k).lstrip("-").isdigit():  # MSD: "1": "edema"
                name, value = v, int(k)
            else:  # nnU-Net v2: "edema": 1
                name, value = str(k), int(v)
            if value != 0:
                classes[name] = value
    except (TypeError, ValueError):
        raise DataError(
            path, 'labels: expected {"0": "background", "1": name} or {"background": 0, name: 1}'
        ) from None
    chans = data.get("channel_names", data.get("modality"))
    channels: tuple[str, ...] = ()
    if chans is not None:
        if not isinstance(chans, dict) or not all(str(k).isdigit() for k in chans):
            raise DataError(path, 'channel names: expected {"0": "T2", "1": "ADC", ...}')
        channels = tuple(str(chans[k]) for k in sorted(chans, key=int))
    if not classes:
        raise DataError(path, "labels: no class other than the background")
    return SourceJson(path, kind, classes, channels)


def resolve_channels(where: Path | str, spec: str | None, names: tuple[str, ...]) -> list[int]:
    """The channel indices a ``--channel`` value selects among ``names`` (one per channel).

    ``None`` -> the first channel; ``"all"`` -> every one; an integer or a name (case-insensitive)
    -> that one. ``DataError`` naming ``where`` with the available channels otherwise.
    """
    if spec is None:
        return [0]
    key = str(spec).strip()
    if key.lower() == "all":
        return list(range(len(names)))
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names)) or "none known"
    if key.isdigit():
        idx = int(key)
        if names and idx >= len(names):
            raise DataError(where, f"channel: {idx} is not a channel; channels: {listing}")
        return [idx]
    matches = [i for i, n in enumerate(names) if n.lower() == key.lower()]
    if not matches:
        raise DataError(
            where, f"channel: {spec!r} names no channel; expected all, an index or one of {listing}"
        )
    return matches[:1]


def find_roi(roi_files: dict[str, Path], stems: list[str]) -> Path | None:
    """The ROI file for an image: the first ``<stem><suffix>`` (``ROI_SUFFIXES``) in ``roi_files``
    (stem -> path), trying each of ``stems`` (image stem, then label stem) in order."""
    for stem in stems:
        for suffix in ROI_SUFFIXES:
            if stem + suffix in roi_files:
                return roi_files[stem + suffix]
    return None
