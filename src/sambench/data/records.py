"""The manifest record: one kept (image, object) of a prepared dataset.

This is the typed record that flows from ``sambench prepare`` to every later stage. A prepared
folder ``OUT`` holds one sub-folder per dataset::

    OUT/<dataset>/images/<dataset>_<case>_<slice>.png   uint8, gray (HW) or RGB (HWC)
    OUT/<dataset>/labels/<dataset>_<case>_<slice>.png   uint8 label map, values 0 (background), 1..255
    OUT/<dataset>/roi/<dataset>_<case>_<slice>.png      optional region of interest, 255 inside
    OUT/<dataset>/sambench-dataset.json                 {"info": {value: name}, "color": {...}, ...}
    OUT/<dataset>/manifest.parquet                      one row per (image, object), columns below

Paths in the manifest are POSIX paths relative to ``OUT`` so a prepared folder can be moved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MANIFEST_NAME = "manifest.parquet"
DATASET_JSON_NAME = "sambench-dataset.json"
"""sambench's description of a prepared dataset (not ``dataset.json``: MSD / nnU-Net's name)."""
LEGACY_DATASET_JSON_NAME = "dataset.json"
"""Its name before; still read in folders prepared with it."""
OPTIONAL_COLUMNS: dict[str, str] = {"roi_path": "", "channel": "", "plane": ""}
"""Columns added later, with the value old manifests are read with."""


@dataclass(frozen=True)
class ObjectRecord:
    """One object (one label value) on one standardized 2D image.

    Coordinates are pixels of the standardized image; ``bbox_*`` are inclusive
    (``x_max`` is the last column that holds the object), XYXY order.
    ``spacing_x``/``spacing_y`` are the in-plane pixel spacing in mm (1.0 for 2D sources
    that carry none); ``spacing_z`` is the slice spacing (NaN for 2D sources).
    ``slice_index`` is the index along ``slice_axis`` in the source volume brought to the
    canonical RAS order (-1 for 2D sources, whose ``slice_axis`` is also -1); ``slice_axis`` 0/1/2
    is the canonical R-L/A-P/S-I axis and ``plane`` names it (sagittal/coronal/axial; "" for 2D).
    """

    dataset: str
    case: str
    slice_index: int
    image_id: str  # file stem, "<dataset>_<case>_<slice>"; unique within a prepared folder
    image_path: str  # relative to the prepared root
    label_path: str  # relative to the prepared root
    object_name: str
    label_value: int  # pixel value in the label PNG, 1..255
    modality: str
    height: int
    width: int
    spacing_x: float
    spacing_y: float
    spacing_z: float
    slice_axis: int
    area: int  # foreground pixels of this object
    bbox_x_min: int
    bbox_y_min: int
    bbox_x_max: int
    bbox_y_max: int
    source_image: str  # path of the source file the slice came from, as given by the user
    roi_path: str = ""  # region-of-interest PNG relative to the prepared root; "" when none
    channel: str = ""  # channel name of a multi-channel source (MSD / nnU-Net); "" when none
    plane: str = ""  # sagittal / coronal / axial for a volume slice; "" for 2D sources

    @property
    def target_modality(self) -> str:
        """The paper's grouping key, e.g. ``"LeftVentricle-MRI"``."""
        return f"{self.object_name}-{self.modality}"

    def to_row(self) -> dict[str, object]:
        return asdict(self)


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ObjectRecord))
