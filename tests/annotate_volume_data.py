"""Test data of the volume annotator: a DICOM series written with pydicom from a NIfTI volume.

:func:`make_dicom_series` writes one MR Image Storage file per slice of the NIfTI's ITK z axis,
with the patient geometry of the NIfTI (ITK's physical frame is DICOM's LPS patient frame):
ImagePositionPatient = origin + i * spacing_z * direction[:, 2], ImageOrientationPatient = the
x and y direction columns, PixelSpacing = (spacing_y, spacing_x) (row, column). So SimpleITK
reads the series back on the NIfTI's grid, and a label on one lies on the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCT = Path(__file__).resolve().parent / "data" / "sct-spinalcord"
SCT_IMAGE = SCT / "images" / "t2.nii.gz"
SCT_LABEL = SCT / "labels" / "t2.nii.gz"


def make_dicom_series(
    nifti: Path,
    folder: Path,
    *,
    description: str = "T2 sagittal",
    seed: int = 0,
    study_uid: str | None = None,
) -> str:
    """Write ``nifti`` as a DICOM series into ``folder`` (created); returns its SeriesInstanceUID."""
    import pydicom
    import SimpleITK as sitk
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    img = sitk.ReadImage(str(nifti))
    arr = sitk.GetArrayFromImage(img).astype(np.int16)  # (z, y, x)
    direction = np.asarray(img.GetDirection(), float).reshape(3, 3)
    origin = np.asarray(img.GetOrigin(), float)
    sx, sy, sz = img.GetSpacing()
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"1.2.826.0.1.3680043.10.1234.{seed}."
    study = study_uid or generate_uid(prefix=prefix, entropy_srcs=["study", str(seed)])
    series = generate_uid(prefix=prefix, entropy_srcs=["series", str(seed), description])
    frame = generate_uid(prefix=prefix, entropy_srcs=["frame", str(seed)])
    mr = "1.2.840.10008.5.1.4.1.1.4"
    for i in range(arr.shape[0]):
        sop = generate_uid(prefix=prefix, entropy_srcs=["sop", str(seed), description, str(i)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = mr
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(
            str(folder / f"s{seed}_{i:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128
        )
        ds.SOPClassUID, ds.SOPInstanceUID = mr, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            "Test^SCT",
            "SCT1",
            "",
            "O",
        )
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20260101", "120000", "A1", "1"
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = "MR", description, 1 + seed
        ds.Manufacturer = "sambench tests"
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [float(v) for v in origin + i * sz * direction[:, 2]]
        ds.ImageOrientationPatient = [float(v) for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [float(sy), float(sx)]
        ds.SliceThickness = float(sz)
        ds.Rows, ds.Columns = int(arr.shape[1]), int(arr.shape[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(arr[i]).tobytes()
        pydicom.dcmwrite(str(folder / f"s{seed}_{i:04d}.dcm"), ds, enforce_file_format=True)
    return str(series)


def write_tiny_ct(path: Path, seed: int = 5) -> Path:
    """A seeded CT-like NIfTI of 30 x 28 x 26 voxels (x, y, z; a bright blob in noise), spacing
    (0.8, 0.9, 2.0) mm, ITK's identity (LPS) direction, so canonical RAS flips its x and y axes:
    small enough for the tiny nnInteractive model to answer in seconds on a CPU."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    nx, ny, nz = 30, 28, 26
    zz, yy, xx = np.mgrid[:nz, :ny, :nx]
    blob = ((zz - 12) ** 2 + (yy - 10) ** 2 + (xx - 19) ** 2) < 36
    arr = (rng.normal(-100, 40, (nz, ny, nx)) + 300 * blob).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.9, 2.0))
    img.SetOrigin((-10.0, 4.0, 20.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path
