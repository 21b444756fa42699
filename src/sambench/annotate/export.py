"""Export an accepted volume: NIfTI on the source grid, DICOM-SEG (highdicom), a 3D Slicer folder.

- ``labels.nii.gz``: the uint8 label map in the source file's voxel order with its size, spacing,
  origin and direction (ITK); :func:`write_label_nifti` re-reads it and refuses to finish when
  the geometry read back differs from the source's.
- ``seg.dcm`` (DICOM sources): a binary DICOM Segmentation written with highdicom, one segment per
  label (SegmentLabel = the label's name), referencing every source instance of the series (the
  frames are the source frames the segment covers). SegmentAlgorithmType is ``SEMIAUTOMATIC``
  for a label a model interaction changed and ``MANUAL`` otherwise; a semi-automatic segment's
  AlgorithmIdentificationSequence names the model, its version (sambench's and the model's) and
  the checkpoint's SHA-256 (AlgorithmParameters). Property category/type are generic
  (Anatomical Structure / Tissue, SNOMED CT): the label names are free text.
- ``slicer/``: ``image.nii.gz`` (the source intensities on their grid), ``labels.nii.gz`` and
  ``labels.ctbl`` (a 3D Slicer colour table: ``value name R G B A`` per line), see
  docs/annotate-3d.md for the steps to open it.
- ``labels.json``: value -> name, colour, how made; ``labels.png`` for a 2D image source.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sambench.annotate.volume_source import Grid, OpenVolume
from sambench.errors import DataError
from sambench.store.atomic import (
    write_atomic,
    write_json_atomic,
    write_png_atomic,
    write_text_atomic,
)
from sambench.version import __version__

SEG_SERIES_NUMBER = 9301
GEOMETRY_ATOL = 1e-4


def _file_order(labels: np.ndarray, grid: Grid) -> np.ndarray:
    """Canonical (z, y, x) -> the source file's (z, y, x) voxel order (contiguous)."""
    return np.ascontiguousarray(grid.orientation.from_canonical_zyx(labels))


def _itk_image(arr_file_zyx: np.ndarray, grid: Grid) -> Any:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr_file_zyx)
    img.SetSpacing([float(v) for v in grid.spacing])
    img.SetOrigin([float(v) for v in grid.origin])
    img.SetDirection([float(v) for v in np.asarray(grid.direction).ravel()])
    return img


def geometry_problem(path: Path, grid: Grid) -> str | None:
    """How the NIfTI at ``path`` differs from ``grid`` (size, spacing, origin, direction), or
    None when they are equal within :data:`GEOMETRY_ATOL`."""
    import SimpleITK as sitk

    r = sitk.ImageFileReader()
    r.SetFileName(str(path))
    r.ReadImageInformation()
    got = Grid(
        tuple(int(v) for v in r.GetSize()[:3]),  # type: ignore[arg-type]
        tuple(float(v) for v in r.GetSpacing()[:3]),  # type: ignore[arg-type]
        tuple(float(v) for v in r.GetOrigin()[:3]),  # type: ignore[arg-type]
        np.asarray(r.GetDirection(), float).reshape(3, 3),
    )
    if got.size != grid.size:
        return f"size {got.size} != {grid.size}"
    for name, a, b in (("spacing", got.spacing, grid.spacing), ("origin", got.origin, grid.origin),
                       ("direction", got.direction, grid.direction)):  # fmt: skip
        if not np.allclose(np.asarray(a, float), np.asarray(b, float), atol=GEOMETRY_ATOL):
            return f"{name} {np.round(np.asarray(a, float), 5).tolist()} != source's"
    return None


def write_label_nifti(path: Path, labels: np.ndarray, grid: Grid) -> Path:
    """Write the canonical uint8 ``labels`` as NIfTI on ``grid``, atomically; re-read and
    checked (DataError naming ``path`` when the geometry read back is not the source's)."""
    import SimpleITK as sitk

    img = _itk_image(_file_order(labels.astype(np.uint8), grid), grid)
    write_atomic(path, lambda p: sitk.WriteImage(img, str(p), useCompression=True), ".nii.gz")
    problem = geometry_problem(path, grid)
    if problem is not None:
        raise DataError(path, f"written, but its geometry differs from the source: {problem}")
    return path


def read_label_map(path: Path, vol: OpenVolume) -> np.ndarray:
    """A label NIfTI on ``vol``'s grid in canonical (z, y, x) order, uint8."""
    from sambench.data.readers import _Volume

    problem = geometry_problem(path, vol.grid)
    if problem is not None:
        raise DataError(path, f"does not lie on the grid of {vol.item.path}: {problem}")
    arr = _Volume(path).read_canonical(None)
    return np.ascontiguousarray(arr, dtype=np.uint8).reshape(vol.shape)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def colour_table(labels: list[Any]) -> str:
    """A 3D Slicer colour table (``.ctbl``): ``value name R G B A`` per line."""
    lines = ["# sambench annotate-volume colour table (3D Slicer format: value name R G B A)",
             "0 Background 0 0 0 0"]  # fmt: skip
    for lab in labels:
        r, g, b = _rgb(lab.colour)
        name = "_".join(lab.name.split()) or f"label_{lab.value}"
        lines.append(f"{lab.value} {name} {r} {g} {b} 255")
    return "\n".join(lines) + "\n"


def write_dicom_seg(
    path: Path,
    vol: OpenVolume,
    labels_map: np.ndarray,
    labels: list[Any],
    *,
    model_name: str,
    model_sha256: str,
    annotator: str,
    algorithm_parameters: dict[str, str] | None = None,
) -> Path:
    """The DICOM-SEG of ``labels`` over ``vol``'s series (see the module docstring)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    if not vol.dicom_files:
        raise ValueError("write_dicom_seg: the volume is not a DICOM series")
    sources = [pydicom.dcmread(str(f)) for f in vol.dicom_files]
    file_zyx = _file_order(labels_map, vol.grid)
    if file_zyx.shape[0] != len(sources):
        raise DataError(vol.item.path, f"{len(sources)} files but {file_zyx.shape[0]} slices")
    pixels = np.stack([file_zyx == lab.value for lab in labels], axis=-1).astype(np.uint8)
    descriptions = []
    for i, lab in enumerate(labels, start=1):
        algo = None
        if lab.model_used:
            algo = hd.AlgorithmIdentificationSequence(
                name=model_name,
                family=codes.cid7162.ArtificialIntelligence,
                version=f"sambench {__version__}",
                source="sambench annotate-volume",
                parameters={"checkpoint_sha256": model_sha256 or "unknown",
                            **(algorithm_parameters or {"propagation": "propagate protocol (box "
                                                        "+ logits, both directions)"})},
            )  # fmt: skip
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=i,
                segment_label=lab.name[:64],
                segmented_property_category=codes.SCT.AnatomicalStructure,
                segmented_property_type=codes.SCT.Tissue,
                algorithm_type=(
                    hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
                    if lab.model_used
                    else hd.seg.SegmentAlgorithmTypeValues.MANUAL
                ),
                algorithm_identification=algo,
                tracking_id=f"{vol.item.item_id}:{lab.value}",
                tracking_uid=hd.UID(),
            )
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="sambench",
        manufacturer_model_name="sambench annotate-volume",
        software_versions=f"sambench {__version__}",
        device_serial_number="none",
        content_label="SAMBENCH",
        content_description="labels accepted in sambench annotate-volume",
        # a one-word name is a family name (DICOM PN: "name^"), else it reads as ambiguous
        content_creator_name=(annotator if "^" in annotator else f"{annotator}^")[:64],
    )
    return write_atomic(path, lambda p: seg.save_as(str(p)), ".dcm")


def write_source_nifti(path: Path, vol: OpenVolume) -> Path:
    """The source intensities as NIfTI on their grid (a NIfTI source is copied as it is)."""
    import SimpleITK as sitk

    if vol.item.kind in ("nifti", "prepared") and str(vol.item.path).endswith(".nii.gz"):
        return write_atomic(path, lambda p: shutil.copyfile(vol.item.path, p), ".nii.gz")
    img = _itk_image(_file_order(vol.image, vol.grid), vol.grid)
    return write_atomic(
        path, lambda p: sitk.WriteImage(img, str(p), useCompression=True), ".nii.gz"
    )


def export_volume(
    out: Path,
    vol: OpenVolume,
    labels_map: np.ndarray,
    labels: list[Any],
    *,
    model_name: str,
    model_sha256: str,
    annotator: str,
    defined: list[Any] | None = None,
    algorithm_parameters: dict[str, str] | None = None,
) -> dict[str, str]:
    """Write every export of one accepted volume into ``out``; returns name -> path.

    ``labels``: the labels with voxels (segments, colour table); ``defined``: every label of the
    volume (``labels.json``, so a resumed session gets the empty ones back too)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"nifti": str(write_label_nifti(out / "labels.nii.gz", labels_map, vol.grid))}
    meta = {
        "item_id": vol.item.item_id,
        "source": str(vol.item.path),
        "series_uid": vol.item.series_uid,
        "labels": {
            str(lab.value): {"name": lab.name, "colour": lab.colour,
                             "made": "SEMIAUTOMATIC" if lab.model_used else "MANUAL"}
            for lab in (defined if defined is not None else labels)
        },
        "model": model_name,
        "model_sha256": model_sha256,
    }  # fmt: skip
    if vol.item.kind == "image2d":
        png = _file_order(labels_map, vol.grid)[0]
        paths["png"] = str(write_png_atomic(out / "labels.png", png))
    if vol.dicom_files and labels:
        paths["dicom_seg"] = str(
            write_dicom_seg(
                out / "seg.dcm",
                vol,
                labels_map,
                labels,
                model_name=model_name,
                model_sha256=model_sha256,
                annotator=annotator,
                algorithm_parameters=algorithm_parameters,
            )
        )
    slicer = out / "slicer"
    slicer.mkdir(exist_ok=True)
    write_source_nifti(slicer / "image.nii.gz", vol)
    write_atomic(
        slicer / "labels.nii.gz",
        lambda p: shutil.copyfile(out / "labels.nii.gz", p),
        ".nii.gz",
    )
    write_text_atomic(slicer / "labels.ctbl", colour_table(labels))
    paths["slicer"] = str(slicer)
    write_json_atomic(out / "labels.json", meta)  # last: its presence marks a complete export
    return paths
