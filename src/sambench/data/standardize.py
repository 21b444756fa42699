"""SPEC section 2 on arrays: normalization, the > 50 px rules, label remapping, instance splitting,
naming and the optional exclusion filters. Pure functions; no file I/O.

Conventions: images HxW or HxWx3 (RGB), labels HxW integers, 0 = background. Bounding boxes are
inclusive XYXY pixel coordinates (x = column, y = row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sambench.data.describe import Filters

MIN_PIXELS = 50
"""A slice needs more than this many foreground pixels; an object needs an area above it."""
MAX_LABELS = 255
MIN_LABEL = 1


def _ranges(values: list[int], limit: int = 12) -> str:
    """``[1, 2, 3, 7, 9, 10]`` -> ``"1..3, 7, 9, 10"`` (runs of 3 or more collapsed; at most
    ``limit`` items, then "...")."""
    items: list[str] = []
    vals = sorted(set(values))
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        if j - i >= 2:
            items.append(f"{vals[i]}..{vals[j]}")
        else:
            items += [str(v) for v in vals[i : j + 1]]
        i = j + 1
    return ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")


class LabelValueError(ValueError):
    """Label values that the dataset description does not list (``values``: the offending ones).

    One line: the offending values and the allowed ones as ranges (``1..255``), then the fix.
    ``out_of_range``: the values do not fit a prepared 8-bit label (no 'classes' given).
    """

    def __init__(self, values: list[int], allowed: list[int], out_of_range: bool = False) -> None:
        self.values = values
        self.allowed = allowed
        shown = _ranges(values)
        if out_of_range:
            msg = (
                f"label value(s) {shown} outside {MIN_LABEL}..{MAX_LABELS}: a prepared label is "
                "8-bit; give a dataset description (--config) whose 'classes' map each source "
                f"value to a pixel value in {MIN_LABEL}..{MAX_LABELS}"
            )
        else:
            msg = (
                f"label value(s) {shown} not in the dataset description; allowed: "
                f"{_ranges(allowed)} (add them to 'classes')"
            )
        super().__init__(msg)


def normalize_minmax(image: np.ndarray) -> np.ndarray:
    """SPEC 2.3: ``255 * (I - min) / (max - min)``, rounded to nearest, as uint8 (same shape).

    Min and max are over the whole array (all channels of an RGB image). A constant image gives
    all zeros. Input must be finite (NaN/Inf are rejected by the readers).
    """
    arr = np.asarray(image)
    lo, hi = arr.min(), arr.max()
    if hi == lo:
        return np.zeros(arr.shape, np.uint8)
    scaled = 255.0 * (arr.astype(np.float64) - float(lo)) / (float(hi) - float(lo))
    return np.rint(scaled).astype(np.uint8)


def apply_window(image: np.ndarray, level: float, width: float) -> np.ndarray:
    """CT intensity window: ``rint(255 * (clip(I, lo, hi) - lo) / width)`` as uint8 (same shape).

    ``lo = level - width / 2``, ``hi = level + width / 2`` (in the image's units, HU for CT):
    values at or below ``lo`` become 0, at or above ``hi`` 255. ``width`` must be > 0.
    A deviation from the paper's per-slice min-max (SPEC 2.3), applied only when asked for.
    """
    if not width > 0:
        raise ValueError(f"width: expected > 0, got {width}")
    lo = float(level) - float(width) / 2.0
    arr = np.asarray(image, dtype=np.float64)
    scaled = 255.0 * (np.clip(arr, lo, lo + float(width)) - lo) / float(width)
    return np.rint(scaled).astype(np.uint8)


def standard_image(
    image: np.ndarray, from_2d_file: bool, window: tuple[float, float] | None = None
) -> np.ndarray:
    """The uint8 image to write: 8-bit 2D files keep their values (gray or RGB); every volume
    slice and every >8-bit or float 2D image is min-max normalized (:func:`normalize_minmax`),
    or, with ``window = (level, width)``, windowed (:func:`apply_window`) instead."""
    if from_2d_file and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if window is not None:
        return apply_window(image, *window)
    return normalize_minmax(image)


def spread_values(n: int) -> list[int]:
    """Evenly spread pixel values for n classes, ``round(255 * k / n)`` for k = 1..n.

    3 classes -> [85, 170, 255], as in the paper's label PNGs; visible in an image viewer.
    """
    if not 1 <= n <= MAX_LABELS:
        raise ValueError(f"n: expected 1..{MAX_LABELS} classes, got {n}")
    return [round(255 * k / n) for k in range(1, n + 1)]


@dataclass(frozen=True)
class LabelMapping:
    """Source label value -> (pixel value 1..255, class name)."""

    pixel: dict[int, int]
    name: dict[int, str]

    @classmethod
    def from_classes(cls, classes: dict[str, int], keep_values: bool = False) -> LabelMapping:
        """Classes (name -> source value) ordered by source value get :func:`spread_values`;
        ``keep_values`` keeps the source values as pixel values (they must lie in 1..255)."""
        items = sorted(classes.items(), key=lambda kv: kv[1])
        if keep_values:
            bad = [v for _, v in items if not 1 <= v <= MAX_LABELS]
            if bad:
                raise ValueError(f"classes: values {bad} outside 1..255 cannot be kept as is")
            pixels = [v for _, v in items]
        else:
            pixels = spread_values(len(items))
        return cls(
            {v: p for (_, v), p in zip(items, pixels, strict=True)}, {v: n for n, v in items}
        )

    def info_json(self) -> dict[str, dict[str, object]]:
        """The paper layout: ``{"info": {"1": name}, "color": {"1": pixel}}``, ids by pixel value."""
        order = sorted(self.pixel, key=lambda v: self.pixel[v])
        return {
            "info": {str(i): self.name[v] for i, v in enumerate(order, 1)},
            "color": {str(i): self.pixel[v] for i, v in enumerate(order, 1)},
        }


def auto_mapping(values: np.ndarray) -> LabelMapping:
    """Mapping for a dataset without classes: each non-zero value v is kept as pixel v and named
    ``label_<v>``; a value outside 1..255 raises :class:`LabelValueError`."""
    vals = [int(v) for v in values if v != 0]
    bad = [v for v in vals if not 1 <= v <= MAX_LABELS]
    if bad:
        raise LabelValueError(bad, list(range(MIN_LABEL, MAX_LABELS + 1)), out_of_range=True)
    return LabelMapping({v: v for v in vals}, {v: f"label_{v}" for v in vals})


def remap_labels(label: np.ndarray, mapping: LabelMapping) -> np.ndarray:
    """HxW source values -> HxW uint8 pixel values (0 stays 0). Unknown values raise
    :class:`LabelValueError` listing them and the allowed ones."""
    values = np.unique(label)
    unknown = [int(v) for v in values if v != 0 and int(v) not in mapping.pixel]
    if unknown:
        raise LabelValueError(unknown, sorted(mapping.pixel))
    out = np.zeros(label.shape, np.uint8)
    for v in values:
        if v != 0:
            out[label == v] = mapping.pixel[int(v)]
    return out


def split_instances(label: np.ndarray) -> list[np.ndarray]:
    """An instance map (each non-zero value one instance) as uint8 maps of at most 255 instances.

    Instances are ordered by source value; map k holds instances 255k+1 .. 255(k+1), renumbered
    1..n in that order. One map when there are at most 255 (or no) instances.
    """
    values = np.unique(label)
    values = values[values != 0]
    if values.size == 0:
        return [np.zeros(label.shape, np.uint8)]
    index = np.searchsorted(values, label)  # position of each pixel's value in ``values``
    fg = label != 0
    maps = []
    for start in range(0, values.size, MAX_LABELS):
        stop = min(start + MAX_LABELS, values.size)
        m = np.zeros(label.shape, np.uint8)
        sel = fg & (index >= start) & (index < stop)
        m[sel] = (index[sel] - start + 1).astype(np.uint8)
        maps.append(m)
    return maps


def image_id(dataset: str, case: str, slice_token: str, part: int | None = None) -> str:
    """``<dataset>_<case>_<slice>`` (``-p<part>`` appended for split instance maps, part >= 1)."""
    base = f"{dataset}_{case}_{slice_token}"
    return base if part is None else f"{base}-p{part}"


def case_with_frame(case: str, frame: int | None) -> str:
    """The case id of frame t of a 4D volume: ``<case>-t<t>`` (the case itself for 3D/2D)."""
    return case if frame is None else f"{case}-t{frame}"


@dataclass(frozen=True)
class ObjectStats:
    """One object of a label map: pixel value, area (px), inclusive XYXY bbox."""

    value: int
    area: int
    bbox: tuple[int, int, int, int]


def object_stats(label: np.ndarray) -> list[ObjectStats]:
    """Area and inclusive XYXY bounding box of every non-zero value of an HxW label, by value."""
    objs = ndimage.find_objects(label.astype(np.int32, copy=False))
    areas = np.bincount(label.ravel().astype(np.int64, copy=False))
    out = []
    for v, sl in enumerate(objs, 1):
        if sl is None:
            continue
        ys, xs = sl
        out.append(ObjectStats(v, int(areas[v]), (xs.start, ys.start, xs.stop - 1, ys.stop - 1)))
    return out


_EIGHT = np.ones((3, 3), bool)


def component_count(mask: np.ndarray, min_size: int = 1) -> int:
    """Number of 8-connected components of an HxW bool mask with at least ``min_size`` pixels."""
    lab, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return 0
    sizes = np.bincount(lab.ravel())[1:]
    return int(np.count_nonzero(sizes >= min_size))


def dispersion(mask: np.ndarray) -> float:
    """RMS distance of the mask's pixels from their centroid over that of a disc of equal area.

    ``sqrt(var(x) + var(y)) / sqrt(area / (2 pi))``: about 1.0 for a disc, larger for elongated
    shapes and much larger for pieces scattered across the image. NaN for an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return float("nan")
    rms = np.sqrt(xs.var() + ys.var())
    return float(rms / np.sqrt(xs.size / (2 * np.pi)))


def object_drop_reason(mask: np.ndarray, area: int, filters: Filters) -> str | None:
    """Why an object is not kept (None: kept). ``"object<=50px"`` first, then the active filters
    in order ``min_object_size``, ``max_components``, ``max_dispersion``."""
    if area <= MIN_PIXELS:
        return f"object<={MIN_PIXELS}px"
    if filters.min_object_size is not None and area < filters.min_object_size:
        return "filter:min_object_size"
    if filters.max_components is not None and (
        component_count(mask, filters.component_min_size) > filters.max_components
    ):
        return "filter:max_components"
    if filters.max_dispersion is not None and dispersion(mask) > filters.max_dispersion:
        return "filter:max_dispersion"
    return None


@dataclass
class StandardPair:
    """One standardized image/label pair with its kept objects and dropped objects' reasons."""

    part: int | None  # instance split index (1-based) or None
    label: np.ndarray  # HxW uint8
    kept: list[ObjectStats]
    dropped: list[str]  # one reason per dropped object


def standardize_label(
    label: np.ndarray, mapping: LabelMapping | None, filters: Filters
) -> tuple[str | None, list[StandardPair]]:
    """SPEC 2.2/2.4 on one HxW source label.

    Returns (slice drop reason or None, pairs). The slice is dropped (``"slice<=50px"``) when it
    has 50 or fewer foreground pixels. ``mapping`` None means an instance map (split into pairs
    of <= 255 instances). A pair without a kept object is returned with an empty ``kept``.
    """
    fg = int(np.count_nonzero(label))
    if fg <= MIN_PIXELS:
        return f"slice<={MIN_PIXELS}px", []
    if mapping is None:
        maps = split_instances(label)
        parts: list[int | None] = list(range(1, len(maps) + 1)) if len(maps) > 1 else [None]
    else:
        maps, parts = [remap_labels(label, mapping)], [None]
    pairs = []
    for part, lab in zip(parts, maps, strict=True):
        kept, dropped = [], []
        for obj in object_stats(lab):
            x0, y0, x1, y1 = obj.bbox
            crop = lab[y0 : y1 + 1, x0 : x1 + 1] == obj.value
            reason = object_drop_reason(crop, obj.area, filters)
            if reason is None:
                kept.append(obj)
            else:
                dropped.append(reason)
        pairs.append(StandardPair(part, lab, kept, dropped))
    return None, pairs
