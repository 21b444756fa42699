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
