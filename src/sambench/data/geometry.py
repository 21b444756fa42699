"""Image/label grid agreement for volumes: size, spacing, origin, direction; label resampling.

Geometry is ITK's: ``size`` (x, y, z) voxels, ``spacing`` (sx, sy, sz) mm, ``origin`` (x, y, z) mm
of voxel (0, 0, 0), ``direction`` the 3x3 matrix of axis direction cosines (columns = axes).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
import SimpleITK as sitk

from sambench.errors import DataError

SPACING_RTOL = 1e-3  # relative tolerance for image/label spacing agreement
ORIGIN_TOL_VOXELS = 0.05  # image/label origins may differ by this fraction of the smallest voxel
DIRECTION_ATOL = 1e-3  # absolute tolerance on the direction cosines of image and label


class Grid(Protocol):
    """The header of a volume (``readers._Volume``); ``frames``: T of a 4D volume or None."""

    path: Path
    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    frames: int | None


def geometry_difference(image: Grid, label: Grid) -> str | None:
    """What differs between the 3D grids of image and label, or None when they agree.

    Compared: size (exactly), spacing (relative ``SPACING_RTOL``), origin (within
    ``ORIGIN_TOL_VOXELS`` of the smallest voxel size, in mm) and direction cosines (absolute
    ``DIRECTION_ATOL``); the first difference found is described with both values.
    """
    if image.size != label.size:
        return f"label size {label.size} (x, y, z) differs from image size {image.size}"
    if not np.allclose(image.spacing, label.spacing, rtol=SPACING_RTOL, atol=0, equal_nan=True):
        return (
            f"label spacing {label.spacing} differs from image spacing {image.spacing} "
            f"(relative tolerance {SPACING_RTOL})"
        )
    finite = [s for s in image.spacing if math.isfinite(s) and s > 0]
    tol = ORIGIN_TOL_VOXELS * (min(finite) if finite else 1.0)
    shift = np.abs(np.subtract(image.origin, label.origin))
    if float(shift.max()) > tol:
        fmt = ", ".join
        return (
            f"label origin ({fmt(f'{v:g}' for v in label.origin)}) mm differs from image origin "
            f"({fmt(f'{v:g}' for v in image.origin)}) mm by up to {float(shift.max()):g} mm "
            f"(tolerance {tol:g} mm)"
        )
    dmax = float(np.abs(image.direction - label.direction).max())
    if dmax > DIRECTION_ATOL:
        return (
            f"label direction {np.round(label.direction, 4).tolist()} differs from image "
            f"direction {np.round(image.direction, 4).tolist()} (largest cosine difference "
            f"{dmax:.4g}, tolerance {DIRECTION_ATOL})"
        )
    return None


def check_pair(image: Grid, label: Grid, resample_labels: bool) -> bool:
    """Validate the pair; True when the label must be resampled onto the image grid."""
    diff = geometry_difference(image, label)
    if label.frames is not None and label.frames != image.frames:
        what = f"{image.frames} frames" if image.frames is not None else "a 3D image"
        raise DataError(label.path, f"4D label with {label.frames} frames; image has {what}")
    if diff is None:
        return False
    if not resample_labels:
        raise DataError(
            label.path,
            f"does not lie on the grid of its image {image.path}: {diff}. Fix the files, or "
            "resample the label onto the image grid (nearest neighbour) with --resample-labels",
        )
    if label.frames is not None:
        raise DataError(label.path, "--resample-labels supports 3D labels only, not 4D ones")
    return True


def resample_label(lab_zyx: np.ndarray, label: Grid, image: Grid) -> np.ndarray:
    """The (z, y, x) label voxels resampled onto the image's 3D grid, nearest neighbour.

    Physical space decides: each image voxel takes the label value at its centre (0 outside the
    label's extent). Uses SimpleITK (identity transform, ``sitkNearestNeighbor``).
    """
    src = sitk.GetImageFromArray(np.ascontiguousarray(lab_zyx))
    src.SetSpacing([float(v) if math.isfinite(v) else 1.0 for v in label.spacing])
    src.SetOrigin(label.origin)
    src.SetDirection(label.direction.ravel().tolist())
    ref = sitk.Image([int(v) for v in image.size], src.GetPixelID())
    ref.SetSpacing([float(v) if math.isfinite(v) else 1.0 for v in image.spacing])
    ref.SetOrigin(image.origin)
    ref.SetDirection(image.direction.ravel().tolist())
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, src.GetPixelID())
    return sitk.GetArrayFromImage(out)
