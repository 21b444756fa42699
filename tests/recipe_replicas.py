"""Replicas of the public releases the recipes read: each builder writes a release's folder layout
(file names and formats as published) with tiny synthetic content, two labelled cases (one for the
single-folder 2D releases' second file kind) and the files a release holds that are not cases
(an unlabelled 4D cine, a sequence file, a dataset.json, a CSV ...).

``build(name, root) -> Replica``: the folder to prepare and what the recipe must find there.
Volumes: labels are 8x8 blocks (64 px > 50) of every source value, in every slice along the axis
the recipe slices (``axis``); ``spacing`` makes that axis the coarsest when the recipe leaves the
plane to prepare (``acquisition``), so the expected plane is known in both cases.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclass
class Replica:
    """``source``: the release folder; ``cases``: labelled cases written; ``values``: source label
    values written (excluded ones included); ``plane``: the plane the slices must be in ("" for
    2D); ``slices``: slices with labels per case (volumes) or 1 (2D)."""

    source: Path
    cases: int
    values: list[int]
    plane: str = ""
    slices: int = 1
    extra: dict[str, object] = field(default_factory=dict)


def _blocks(shape2d: tuple[int, int], values: list[int], dtype: type = np.uint8) -> np.ndarray:
    lab = np.zeros(shape2d, dtype=dtype)
    per = math.ceil(math.sqrt(len(values)))
    for i, v in enumerate(values):
        r, c = divmod(i, per)
        lab[2 + 10 * r : 10 + 10 * r, 2 + 10 * c : 10 + 10 * c] = v
    return lab


def _side(n: int) -> int:
    return 10 * math.ceil(math.sqrt(n)) + 4


def _volume(values: list[int], axis: int, n_slices: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(image float32, label int16) in RAS (x, y, z) with ``values`` blocks in every slice along
    ``axis``."""
    side = _side(len(values))
    shape = [side, side, side]
    shape[axis] = n_slices
    rng = np.random.default_rng(len(values))
    img = rng.normal(100, 20, shape).astype(np.float32)
    lab = np.zeros(shape, np.int16)
    plane = _blocks((side, side), values, np.int16)
    for k in range(n_slices):
        idx: list[object] = [slice(None)] * 3
        idx[axis] = k
        lab[tuple(idx)] = plane
    return img, lab


def _spacing(axis: int) -> tuple[float, float, float]:
    sp = [0.8, 0.8, 0.8]
    sp[axis] = 3.0
    return sp[0], sp[1], sp[2]


def _nifti(path: Path, arr: np.ndarray, spacing: tuple[float, float, float]) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.diag([*spacing, 1.0])), str(path))


def _mhd(path: Path, arr: np.ndarray, spacing: tuple[float, ...]) -> None:
    """MetaImage .mhd + .raw (arr in (x, y[, z]) order, written as ITK's (z, y, x))."""
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.T))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path), False)  # uncompressed: .raw beside the .mhd


def _vol_pair(
    img_path: Path, lab_path: Path, values: list[int], axis: int, writer: Callable[..., None]
) -> None:
    img, lab = _volume(values, axis)
    writer(img_path, img, _spacing(axis))
    writer(lab_path, lab, _spacing(axis))


def _rgb(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(20, 230, (*shape, 3), dtype=np.uint8)


def _save2d(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, arr)
    elif suffix == ".gif":
        Image.fromarray(arr).save(path)  # gray levels are the palette indices
    elif suffix in (".jpg", ".jpeg"):
        Image.fromarray(arr).save(path, quality=90)
    else:
        Image.fromarray(arr).save(path)


def _binary2d(img: Path, lab: Path, fg: int, seed: int, side: int = 40) -> None:
    _save2d(img, _rgb((side, side), seed))
    mask = np.zeros((side, side), np.uint8)
    mask[8:24, 10:30] = fg
    _save2d(lab, mask)


# --- volume releases -----------------------------------------------------------------------


def write_msd(
    root: Path,
    task: str,
    stem: str,
    cases: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    channel_names: dict[str, str],
    labels: dict[str, str],
) -> Path:
    """Write an MSD release folder ``root/task`` (``dataset.json``, ``imagesTr/<stem>_<i>.nii.gz``,
    ``labelsTr/<stem>_<i>.nii.gz``, an unlabelled ``imagesTs`` case and a macOS ``._`` file) from
    ``cases``: (image, label, affine) each, arrays in the file's voxel order (a trailing channel
    axis makes the image 4D), the same 4x4 affine for both files. Returns the task folder."""
    src = root / task
    (src / "imagesTs").mkdir(parents=True)
    n_channels = cases[0][0].shape[3] if cases[0][0].ndim == 4 else 1
    ids = range(1, len(cases) + 1)
    meta = {
        "name": task.split("_")[1],
        "tensorImageSize": "4D" if n_channels > 1 else "3D",
        "modality": channel_names,
        "labels": {"0": "background", **labels},
        "numTraining": len(cases),
        "training": [
            {"image": f"./imagesTr/{stem}_{i}.nii.gz", "label": f"./labelsTr/{stem}_{i}.nii.gz"}
            for i in ids
        ],
    }
    (src / "dataset.json").write_text(json.dumps(meta))
    for i, (img, lab, affine) in zip(ids, cases, strict=True):
        _nifti_affine(src / "imagesTr" / f"{stem}_{i}.nii.gz", img, affine)
        _nifti_affine(src / "labelsTr" / f"{stem}_{i}.nii.gz", lab, affine)
    img, _, affine = cases[-1]
    _nifti_affine(src / "imagesTs" / f"{stem}_9.nii.gz", img, affine)  # no label: ignored
    (src / "imagesTr" / f"._{stem}_1.nii.gz").write_bytes(b"\0" * 10)  # macOS resource fork
    return src


def _nifti_affine(path: Path, arr: np.ndarray, affine: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, affine), str(path))


def _msd(task: str, stem: str, n_channels: int, channel_names: dict[str, str]):
    def build(root: Path, values: list[int], axis: int) -> int:
        cases = []
        for _ in (1, 2):
            img, lab = _volume(values, axis)
            if n_channels > 1:
                img = np.stack([img + 10 * c for c in range(n_channels)], axis=-1)
            cases.append((img, lab, np.diag([*_spacing(axis), 1.0])))
        labels = {str(v): f"class{v}" for v in values}
        write_msd(root, task, stem, cases, channel_names, labels)
        return 2

    return build


def _acdc(root: Path, values: list[int], axis: int) -> int:
    src = root / "ACDC" / "database" / "training"
    for p in ("patient001", "patient002"):
        d = src / p
        for fr in ("01", "12"):
            _vol_pair(
                d / f"{p}_frame{fr}.nii.gz", d / f"{p}_frame{fr}_gt.nii.gz", values, axis, _nifti
            )
        img, _ = _volume(values, axis)
        _nifti(d / f"{p}_4d.nii.gz", np.stack([img, img], -1), _spacing(axis))  # no labels
        (d / "Info.cfg").write_text("ED: 1\nES: 12\nGroup: DCM\n")
    return 4


def _mnms(root: Path, values: list[int], axis: int) -> int:
    src = root / "OpenDataset" / "Training" / "Labeled"
    for code in ("A0S9V9", "A1D0Q7"):
        img, lab = _volume(values, axis)
        img4 = np.stack([img, img + 1, img + 2], -1)
        lab4 = np.stack([lab, np.zeros_like(lab), lab], -1)  # ED and ES labelled, one frame not
        _nifti(src / code / f"{code}_sa.nii.gz", img4, _spacing(axis))
        _nifti(src / code / f"{code}_sa_gt.nii.gz", lab4, _spacing(axis))
    return 2


def _brats(root: Path, values: list[int], axis: int) -> int:
    src = root / "MICCAI_BraTS2020_TrainingData"
    for i in ("001", "002"):
        d = src / f"BraTS20_Training_{i}"
        img, lab = _volume(values, axis)
        for ch in ("flair", "t1", "t1ce", "t2"):
            _nifti(d / f"BraTS20_Training_{i}_{ch}.nii.gz", img, _spacing(axis))
        _nifti(d / f"BraTS20_Training_{i}_seg.nii.gz", lab, _spacing(axis))
    (src / "name_mapping.csv").write_text("Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_001\n")
    return 2


def _kits(version: str):
    def build(root: Path, values: list[int], axis: int) -> int:
        base = root / "kits19" / "data" if version == "19" else root / "kits21" / "kits21" / "data"
        seg = "segmentation.nii.gz" if version == "19" else "aggregated_MAJ_seg.nii.gz"
        for c in ("case_00000", "case_00001"):
            _vol_pair(base / c / "imaging.nii.gz", base / c / seg, values, axis, _nifti)
        (base / "kits.json").write_text("[]")
        return 2

    return build


def _amos(which: str):
    def build(root: Path, values: list[int], axis: int) -> int:
        src = root / "amos22"
        meta = {
            "labels": {"0": "background", "1": "spleen"},
            "modality": {"0": "CT"},
            "numTraining": 240,
        }
        src.mkdir(parents=True)
        (src / "dataset.json").write_text(json.dumps(meta))
        ct, mri = ("0001", "0004"), ("0507", "0540")
        for cid in ct + mri:
            _vol_pair(
                src / "imagesTr" / f"amos_{cid}.nii.gz",
                src / "labelsTr" / f"amos_{cid}.nii.gz",
                values,
                axis,
                _nifti,
            )
        return 2

    return build


def _simple_tr(folder: str, stem: str):
    def build(root: Path, values: list[int], axis: int) -> int:
        src = root / folder
        for i in ("0001", "0002"):
            _vol_pair(
                src / "imagesTr" / f"{stem}_{i}.nii.gz",
                src / "labelsTr" / f"{stem}_{i}.nii.gz",
                values,
                axis,
                _nifti,
            )
        return 2

    return build


def _feta(root: Path, values: list[int], axis: int) -> int:
    src = root / "feta_2.1"
    for s, rec in (("sub-001", "mial"), ("sub-041", "irtk")):
        d = src / s / "anat"
        _vol_pair(
            d / f"{s}_rec-{rec}_T2w.nii.gz", d / f"{s}_rec-{rec}_dseg.nii.gz", values, axis, _nifti
        )
    (src / "participants.tsv").write_text("participant_id\tGestational age\n")
    return 2


def _verse(year: str):
    def build(root: Path, values: list[int], axis: int) -> int:
        if year == "19":
            src, subs = (
                root / "verse19" / "dataset-verse19training",
                ("sub-verse004", "sub-verse005"),
            )
        else:
            src, subs = (
                root / "verse20" / "dataset-01training",
                ("sub-gl003_dir-ax", "sub-verse506_dir-iso"),
            )
        for s in subs:
            sub = s.split("_")[0]
            _vol_pair(
                src / "rawdata" / sub / f"{s}_ct.nii.gz",
                src / "derivatives" / sub / f"{s}_seg-vert_msk.nii.gz",
                values,
                axis,
                _nifti,
            )
            (src / "derivatives" / sub / f"{s}_seg-subreg_ctd.json").write_text("[]")
        return 2

    return build


def _luna(root: Path, values: list[int], axis: int) -> int:
    src = root / "LUNA16"
    for uid in (
        "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860",
        "1.3.6.1.4.1.14519.5.2.1.6279.6001.100332161840553388986847034053",
    ):
        img, lab = _volume(values, axis)
        _mhd(src / "subset0" / f"{uid}.mhd", img, _spacing(axis))
        _mhd(src / "seg-lungs-LUNA16" / f"{uid}.mhd", lab, _spacing(axis))
    (src / "annotations.csv").write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n")
    return 2


def _camus(root: Path, values: list[int], axis: int) -> int:
    src = root / "CAMUS" / "training"
    n = 0
    for p in ("patient0001", "patient0002"):
        for view in ("2CH", "4CH"):
            for ph in ("ED", "ES"):
                side = _side(len(values))
                img = np.random.default_rng(n).integers(0, 255, (side, side, 1)).astype(np.uint8)
                lab = _blocks((side, side), values)[:, :, None]
                _mhd(src / p / f"{p}_{view}_{ph}.mhd", img, (0.3, 0.15, 1.0))
                _mhd(src / p / f"{p}_{view}_{ph}_gt.mhd", lab, (0.3, 0.15, 1.0))
                n += 1
            seq = np.zeros((8, 8, 2), np.uint8)
            _mhd(src / p / f"{p}_{view}_sequence.mhd", seq, (0.3, 0.15, 1.0))  # no labels
        (src / p / "Info_2CH.cfg").write_text("ED: 1\nES: 12\n")
    return n


def _totalsegmentator(names: list[str]):
    """sNNNN/ct.nii.gz and one binary sNNNN/segmentations/<structure>.nii.gz per structure (all
    104 files in every case, as released), plus meta.csv."""

    def build(root: Path, values: list[int], axis: int) -> int:
        src = root / "Totalsegmentator_dataset"
        for case in ("s0000", "s0011"):
            img, lab = _volume(values, axis)
            _nifti(src / case / "ct.nii.gz", img, _spacing(axis))
            for v, name in zip(values, names, strict=True):
                _nifti(
                    src / case / "segmentations" / f"{name}.nii.gz",
                    (lab == v).astype(np.uint8),
                    _spacing(axis),
                )
        (src / "meta.csv").write_text("image_id;age;gender;institute;study_type;split\n")
        return 2

    return build


def _montgomery(root: Path, values: list[int], axis: int) -> int:
    src = root / "MontgomerySet"
    for i, stem in enumerate(("MCUCXR_0001_0", "MCUCXR_0104_1")):
        _save2d(src / "CXR_png" / f"{stem}.png", _rgb((40, 40), i)[..., 0])
        for side, cols in (("leftMask", slice(22, 36)), ("rightMask", slice(4, 18))):
            m = np.zeros((40, 40), np.uint8)
            m[6:34, cols] = 255
            _save2d(src / "ManualMask" / side / f"{stem}.png", m)
    (src / "NLM-MontgomeryCXRSet-ReadMe.pdf").write_bytes(b"%PDF-1.4")
    return 2


def _tiff_stack(files: list[tuple[str, str]], label_fg: int):
    """Multi-page TIFF stacks (pages x H x W uint8) with their label stacks (0 / ``label_fg``)."""

    def build(root: Path, values: list[int], axis: int) -> int:
        import tifffile

        for i, (img, lab) in enumerate(files):
            stack = np.random.default_rng(i).integers(0, 255, (3, 40, 48), dtype=np.uint8)
            lab_stack = np.zeros_like(stack)
            lab_stack[:, 8:24, 10:30] = label_fg
            (root / img).parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(root / img, stack, photometric="minisblack")
            tifffile.imwrite(root / lab, lab_stack, photometric="minisblack")
        return len(files)

    return build


def write_dicom_series(folder: Path, arr_xyz: np.ndarray, spacing, names: list[str]) -> None:
    """A (x, y, z) int16 volume as a DICOM series, slice z in the file ``names[z]`` (GDCM's
    writer changes the process locale: it is put back)."""
    import locale

    import SimpleITK as sitk

    saved = locale.setlocale(locale.LC_ALL)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        vol = sitk.GetImageFromArray(np.ascontiguousarray(arr_xyz.transpose(2, 1, 0)))
        vol.SetSpacing(spacing)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        uid = f"1.2.826.0.1.3680043.2.1125.{abs(hash(str(folder))) % 10**8}"
        for z in range(vol.GetDepth()):
            sl = vol[:, :, z]
            pos = vol.TransformIndexToPhysicalPoint((0, 0, z))
            tags = {
                "0008|0060": "CT",
                "0020|000d": uid + ".1",
                "0020|000e": uid,
                "0020|0037": "1\\0\\0\\0\\1\\0",
                "0020|0032": "\\".join(map(str, pos)),
                "0020|0013": str(z + 1),
                "0008|0018": f"{uid}.{z + 1}",
                "0018|0050": str(spacing[2]),
            }
            for key, value in tags.items():
                sl.SetMetaData(key, value)
            writer.SetFileName(str(folder / names[z]))
            writer.Execute(sl)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _chaos(mod: str):
    """Train_Sets/<CT|MR>/<n>/[T2SPIR/]DICOM_anon/*.dcm and Ground/*.png, one PNG per DICOM file;
    file names run against the slice positions (the last slice in the first file) so labels must
    follow the files, not the array order."""

    def build(root: Path, values: list[int], axis: int) -> int:
        base = root / "CHAOS_Train_Sets" / "Train_Sets" / mod
        file_values = [255] if mod == "CT" else values
        for n in ("1", "2"):
            case = base / n if mod == "CT" else base / n / "T2SPIR"
            img, lab = _volume(file_values, axis)
            img = (img * 10).astype(np.int16)
            nz = img.shape[2]
            if mod == "CT":
                dcm = [f"i{nz - 1 - z:04d},0000b.dcm" for z in range(nz)]
                png = [f"liver_GT_{nz - 1 - z:03d}.png" for z in range(nz)]
            else:
                dcm = [f"IMG-0002-{nz - z:05d}.dcm" for z in range(nz)]
                png = [f"IMG-0002-{nz - z:05d}.png" for z in range(nz)]
            write_dicom_series(case / "DICOM_anon", img, _spacing(axis), dcm)
            for z in range(nz):
                _save2d(
                    case / "Ground" / png[z], np.ascontiguousarray(lab[:, :, z].T).astype(np.uint8)
                )
        return 2

    return build


def _pairs3d(pairs: list[tuple[str, str]], writer: Callable[..., None] = _nifti, extra: str = ""):
    """Volume releases named file by file: (image, label) relative paths; ``extra`` a file of the
    release that is no case (written empty)."""

    def build(root: Path, values: list[int], axis: int) -> int:
        for img, lab in pairs:
            _vol_pair(root / img, root / lab, values, axis, writer)
        if extra:
            (root / extra).parent.mkdir(parents=True, exist_ok=True)
            (root / extra).write_text("")
        return len(pairs)

    return build


# --- 2D releases ---------------------------------------------------------------------------


def _pairs2d(folder: str, pairs: list[tuple[str, str]], fg: int) -> Callable[..., int]:
    def build(root: Path, values: list[int], axis: int) -> int:
        for i, (img, lab) in enumerate(pairs):
            _binary2d(root / folder / img, root / folder / lab, fg, i)
        return len(pairs)

    return build


def _drive(root: Path, values: list[int], axis: int) -> int:
    src = root / "DRIVE"
    for i in ("21", "22"):
        _binary2d(
            src / "training" / "images" / f"{i}_training.tif",
            src / "training" / "1st_manual" / f"{i}_manual1.gif",
            255,
            int(i),
        )
        fov = np.zeros((40, 40), np.uint8)
        fov[2:38, 2:38] = 255
        _save2d(src / "training" / "mask" / f"{i}_training_mask.gif", fov)
    _save2d(src / "test" / "images" / "01_test.tif", _rgb((40, 40), 1))  # no manual labels used
    return 2


def _instances(
    root: Path, folder: str, files: list[tuple[str, str]], values: list[int], dtype: type
) -> int:
    for i, (img, lab) in enumerate(files):
        _save2d(root / folder / img, _rgb((40, 40), i))
        _save2d(root / folder / lab, _blocks((40, 40), values, dtype))
    return len(files)


def _glas(root: Path, values: list[int], axis: int) -> int:
    files = [("train_1.bmp", "train_1_anno.bmp"), ("testA_12.bmp", "testA_12_anno.bmp")]
    n = _instances(root, "Warwick QU Dataset (Released 2016_07_08)", files, values, np.uint8)
    (root / "Warwick QU Dataset (Released 2016_07_08)" / "Grade.csv").write_text("name,grade\n")
    return n


def _crag(root: Path, values: list[int], axis: int) -> int:
    files = [
        ("train/Images/train_1.png", "train/Annotation/train_1.png"),
        ("valid/Images/test_1.png", "valid/Annotation/test_1.png"),
    ]
    return _instances(root, "CRAG", files, values, np.uint16)


def _cellseg(root: Path, values: list[int], axis: int) -> int:
    files = [
        ("images/cell_00001.png", "labels/cell_00001_label.tiff"),
        ("images/cell_00002.tif", "labels/cell_00002_label.tiff"),
    ]
    return _instances(root, "Training-labeled", files, values, np.uint16)


# recipe name -> (builder, label values written: the recipe's own unless given, 2D?)
BUILDERS: dict[str, Callable[[Path, list[int], int], int]] = {
    "MSD-BrainTumour": _msd(
        "Task01_BrainTumour", "BRATS", 4, {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    ),
    "MSD-Heart": _msd("Task02_Heart", "la", 1, {"0": "MRI"}),
    "MSD-Liver": _msd("Task03_Liver", "liver", 1, {"0": "CT"}),
    "MSD-Hippocampus": _msd("Task04_Hippocampus", "hippocampus", 1, {"0": "MRI"}),
    "MSD-Prostate": _msd("Task05_Prostate", "prostate", 2, {"0": "T2", "1": "ADC"}),
    "MSD-Lung": _msd("Task06_Lung", "lung", 1, {"0": "CT"}),
    "MSD-Pancreas": _msd("Task07_Pancreas", "pancreas", 1, {"0": "CT"}),
    "MSD-HepaticVessel": _msd("Task08_HepaticVessel", "hepaticvessel", 1, {"0": "CT"}),
    "MSD-Spleen": _msd("Task09_Spleen", "spleen", 1, {"0": "CT"}),
    "MSD-Colon": _msd("Task10_Colon", "colon", 1, {"0": "CT"}),
    "ACDC": _acdc,
    "MnMs": _mnms,
    "BraTS2020": _brats,
    "KiTS19": _kits("19"),
    "KiTS21": _kits("21"),
    "AMOS-CT": _amos("CT"),
    "AMOS-MRI": _amos("MRI"),
    "WORD": _simple_tr("WORD-V0.1.0", "word"),
    "FeTA": _feta,
    "VerSe19": _verse("19"),
    "VerSe20": _verse("20"),
    "LUNA16": _luna,
    "CAMUS": _camus,
    "ISIC2018": _pairs2d(
        "ISIC2018",
        [
            (
                "ISIC2018_Task1-2_Training_Input/ISIC_0000000.jpg",
                "ISIC2018_Task1_Training_GroundTruth/ISIC_0000000_segmentation.png",
            ),
            (
                "ISIC2018_Task1-2_Training_Input/ISIC_0000001.jpg",
                "ISIC2018_Task1_Training_GroundTruth/ISIC_0000001_segmentation.png",
            ),
        ],
        255,
    ),
    "Kvasir-SEG": _pairs2d(
        "Kvasir-SEG",
        [
            ("images/cju0qkwl35piu0993l0dewei2.jpg", "masks/cju0qkwl35piu0993l0dewei2.jpg"),
            ("images/cju0qoxqj9q6s0835b43399p4.jpg", "masks/cju0qoxqj9q6s0835b43399p4.jpg"),
        ],
        255,
    ),
    "Kvasir-Instrument": _pairs2d(
        "kvasir-instrument",
        [
            ("images/ck2bxiswtxuw80838qkisqjwz.jpg", "masks/ck2bxiswtxuw80838qkisqjwz.png"),
            ("images/ck2bxknhjvs1x0794iogrq49k.jpg", "masks/ck2bxknhjvs1x0794iogrq49k.png"),
        ],
        255,
    ),
    "CVC-ClinicDB": _pairs2d(
        "CVC-ClinicDB",
        [("Original/1.tif", "Ground Truth/1.tif"), ("Original/2.tif", "Ground Truth/2.tif")],
        255,
    ),
    "ETIS-Larib": _pairs2d(
        "ETIS-LaribPolypDB",
        [
            ("ETIS-LaribPolypDB/1.tif", "Ground Truth/p1.tif"),
            ("ETIS-LaribPolypDB/2.tif", "Ground Truth/p2.tif"),
        ],
        255,
    ),
    "DRIVE": _drive,
    "STARE": _pairs2d(
        "STARE",
        [
            ("stare-images/im0001.ppm", "labels-ah/im0001.ah.ppm"),
            ("stare-images/im0002.ppm", "labels-ah/im0002.ah.ppm"),
        ],
        255,
    ),
    "CHASE-DB1": _pairs2d(
        "CHASEDB1",
        [("Image_01L.jpg", "Image_01L_1stHO.png"), ("Image_01R.jpg", "Image_01R_1stHO.png")],
        1,
    ),
    "TN-SCUI2020": _pairs2d(
        "TN-SCUI2020", [("image/1.PNG", "mask/1.PNG"), ("image/2.PNG", "mask/2.PNG")], 255
    ),
    "Montgomery": _montgomery,
    "crossMoDA2021": _pairs3d(
        [
            (
                f"crossmoda/crossmoda_training/source_training/crossmoda_{i}_ceT1.nii.gz",
                f"crossmoda/crossmoda_training/source_training/crossmoda_{i}_Label.nii.gz",
            )
            for i in (1, 2)
        ],
        extra="crossmoda/crossmoda_training/target_training/crossmoda_106_hrT2.nii.gz",
    ),
    "PROMISE12": _pairs3d(
        [
            (
                "PROMISE12/TrainingData_Part1/Case00.mhd",
                "PROMISE12/TrainingData_Part1/Case00_segmentation.mhd",
            ),
            (
                "PROMISE12/TrainingData_Part2/Case17.mhd",
                "PROMISE12/TrainingData_Part2/Case17_segmentation.mhd",
            ),
        ],
        _mhd,
    ),
    "SLIVER07": _pairs3d(
        [
            (
                "SLIVER07/training-part1/liver-orig001.mhd",
                "SLIVER07/training-part1/liver-seg001.mhd",
            ),
            (
                "SLIVER07/training-part2/liver-orig011.mhd",
                "SLIVER07/training-part2/liver-seg011.mhd",
            ),
        ],
        _mhd,
    ),
    "AbdomenCT-1K": _pairs3d(
        [
            (
                "AbdomenCT-1K/AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz",
                "AbdomenCT-1K/Mask/Case_00001.nii.gz",
            ),
            (
                "AbdomenCT-1K/AbdomenCT-1K-ImagePart3/Case_00901_0000.nii.gz",
                "AbdomenCT-1K/Mask/Case_00901.nii.gz",
            ),
        ]
    ),
    "CHAOS-CT": _chaos("CT"),
    "CHAOS-MR-T2": _chaos("MR"),
    "EPFL-EM": _tiff_stack(
        [
            ("EPFL-EM/training.tif", "EPFL-EM/training_groundtruth.tif"),
            ("EPFL-EM/testing.tif", "EPFL-EM/testing_groundtruth.tif"),
        ],
        255,
    ),
    "ISBI2012-ssTEM": _tiff_stack(
        [("ISBI2012/train-volume.tif", "ISBI2012/train-labels.tif")], 255
    ),
    "TotalSegmentator": _totalsegmentator([]),
    "GlaS": _glas,
    "CRAG": _crag,
    "CellSeg2022": _cellseg,
}
SOURCE_FOLDER = {
    "MSD-BrainTumour": "Task01_BrainTumour",
    "MSD-Heart": "Task02_Heart",
    "MSD-Liver": "Task03_Liver",
    "MSD-Hippocampus": "Task04_Hippocampus",
    "MSD-Prostate": "Task05_Prostate",
    "MSD-Lung": "Task06_Lung",
    "MSD-Pancreas": "Task07_Pancreas",
    "MSD-HepaticVessel": "Task08_HepaticVessel",
    "MSD-Spleen": "Task09_Spleen",
    "MSD-Colon": "Task10_Colon",
    "TotalSegmentator": "Totalsegmentator_dataset",
    "Montgomery": "MontgomerySet",
    "crossMoDA2021": "crossmoda",
    "PROMISE12": "PROMISE12",
    "SLIVER07": "SLIVER07",
    "AbdomenCT-1K": "AbdomenCT-1K",
    "CHAOS-CT": "CHAOS_Train_Sets",
    "CHAOS-MR-T2": "CHAOS_Train_Sets",
    "EPFL-EM": "EPFL-EM",
    "ISBI2012-ssTEM": "ISBI2012",
    "ACDC": "ACDC",
    "MnMs": "OpenDataset",
    "BraTS2020": "MICCAI_BraTS2020_TrainingData",
    "KiTS19": "kits19",
    "KiTS21": "kits21",
    "AMOS-CT": "amos22",
    "AMOS-MRI": "amos22",
    "WORD": "WORD-V0.1.0",
    "FeTA": "feta_2.1",
    "VerSe19": "verse19",
    "VerSe20": "verse20",
    "LUNA16": "LUNA16",
    "CAMUS": "CAMUS",
    "ISIC2018": "ISIC2018",
    "Kvasir-SEG": "Kvasir-SEG",
    "Kvasir-Instrument": "kvasir-instrument",
    "CVC-ClinicDB": "CVC-ClinicDB",
    "ETIS-Larib": "ETIS-LaribPolypDB",
    "DRIVE": "DRIVE",
    "STARE": "STARE",
    "CHASE-DB1": "CHASEDB1",
    "TN-SCUI2020": "TN-SCUI2020",
    "GlaS": "Warwick QU Dataset (Released 2016_07_08)",
    "CRAG": "CRAG",
    "CellSeg2022": "Training-labeled",
}
INSTANCE_VALUES = {"GlaS": [1, 2, 3], "CRAG": [5, 9, 12], "CellSeg2022": [300, 301, 1600]}


def build(recipe, root: Path) -> Replica:
    """Write ``recipe``'s release replica under ``root``; returns what was written."""
    values = INSTANCE_VALUES.get(recipe.name) or sorted(
        [*recipe.labels, *(e.value for e in recipe.exclude)]
    )
    axis = AXIS["sagittal" if recipe.plane == "acquisition" else recipe.plane]
    if recipe.name == "TotalSegmentator":
        names = list(recipe.layout["labels"])
        cases = _totalsegmentator(names)(root, values, axis)
    else:
        cases = BUILDERS[recipe.name](root, values, axis)
    volume = recipe.name not in _TWO_D
    plane = ("sagittal" if recipe.plane == "acquisition" else recipe.plane) if volume else ""
    slices = 1 if recipe.name == "CAMUS" or not volume else 3
    extra: dict[str, object] = {"area": 28 * 14} if recipe.name == "Montgomery" else {}
    if recipe.name in ("EPFL-EM", "ISBI2012-ssTEM"):
        extra = {"area": 16 * 20}
    return Replica(root / SOURCE_FOLDER[recipe.name], cases, values, plane, slices, extra)


_TWO_D = {
    "ISIC2018",
    "Kvasir-SEG",
    "Kvasir-Instrument",
    "CVC-ClinicDB",
    "ETIS-Larib",
    "DRIVE",
    "STARE",
    "CHASE-DB1",
    "TN-SCUI2020",
    "GlaS",
    "CRAG",
    "CellSeg2022",
    "Montgomery",
}
