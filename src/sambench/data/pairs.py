"""Pairing a described dataset's files into units of work: image + label (+ channel, + ROI).

``find_pairs(desc)`` lists the cases of a :class:`~sambench.data.describe.DatasetDescription`:
images paired with labels by stem (or the description's ``pairing``), nnU-Net channel files
``<case>_NNNN`` grouped as channels of one case, 4D multi-channel images split by channel, and
regions of interest matched to 2D images (``layouts.find_roi``).
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sambench.data.describe import DatasetDescription, file_stem, sanitize_case
from sambench.data.layouts import CHANNEL_SUFFIX, find_roi, resolve_channels
from sambench.data.readers import (
    IMAGE_2D_SUFFIXES,
    VOLUME_SUFFIXES,
    is_slice_folder,
    is_volume_path,
)
from sambench.errors import DataError


@dataclass(frozen=True)
class CasePair:
    """One unit of work: an image and its label (files or DICOM folders), its sanitized case id.

    Multi-channel cases: ``channel`` is the channel index (None: single-channel source);
    ``read_channel`` is the index to read along a 4D image's 4th axis (MSD) or None (a file per
    channel, nnU-Net, or no channels); ``tag`` names the channel in image ids and part files when
    one case gives several channels (``--channel all``), else ""; ``modality`` overrides the
    dataset's modality (the channel's name when no modality was given). ``roi``: the region of
    interest file of a 2D image, or None.
    """

    case: str
    image: Path
    label: Path
    channel: int | None = None
    read_channel: int | None = None
    tag: str = ""
    modality: str | None = None
    roi: Path | None = None
    label_parts: tuple[tuple[int, Path], ...] | None = None  # (value, file) per structure

    @property
    def unit(self) -> str:
        """The id of this unit's part file: the case, plus ``.<tag>`` for one of its channels."""
        return self.case if not self.tag else f"{self.case}.{self.tag}"


def _link_problem(p: Path) -> str | None:
    """Why a symlink cannot be followed ("symlink loop", "broken symlink"), or None."""
    if not p.is_symlink():
        return None
    try:
        os.stat(p)
    except OSError as e:
        return "symlink loop" if e.errno == errno.ELOOP else f"broken symlink ({e.strerror})"
    return None


def _entries(
    source: Path,
    spec: str,
    skipped: list[tuple[Path, str]] | None = None,
    slice_folders: bool = False,
) -> list[Path]:
    """Image/label entries of a folder or glob: supported files and DICOM series folders (and,
    with ``slice_folders``, folders of 2D label slices such as CHAOS's ``Ground/``).
    Symlinks that cannot be followed (loops, broken) are added to ``skipped`` with the reason."""
    base = source / spec
    candidates = sorted(base.iterdir()) if base.is_dir() else sorted(source.glob(spec))
    out = []
    for p in candidates:
        if p.name.startswith("."):
            continue
        problem = _link_problem(p)
        if problem is not None:
            if skipped is not None:
                skipped.append((p, problem))
            continue
        if p.is_file() and (p.suffix.lower() in IMAGE_2D_SUFFIXES or is_volume_path(p)):
            out.append(p)
        elif p.is_dir() and (is_volume_path(p) or (slice_folders and is_slice_folder(p))):
            out.append(p)
    return out


def pairing_key(desc: DatasetDescription, path: Path) -> str | None:
    """The stem a file pairs by: its file stem, or with ``pairing.key_regex`` the regex's first
    group searched in its path relative to the source (``'(case_\\d+)/'`` pairs KiTS's
    ``case_00000/imaging.nii.gz`` with ``case_00000/segmentation.nii.gz``); None when the regex
    does not match."""
    regex = desc.pairing.get("key_regex")
    if regex is None:
        return file_stem(path)
    try:
        rel = path.relative_to(desc.source).as_posix()
    except ValueError:
        rel = path.as_posix()
    m = re.search(regex, rel)
    return None if m is None else m.group(1)


def label_stem_for(desc: DatasetDescription, image_stem: str) -> str:
    """The label stem paired with an image stem (same stem unless ``pairing`` says otherwise)."""
    p = desc.pairing
    if "regex" in p:
        return re.sub(p["regex"], p["replace"], image_stem)
    if "image_suffix" in p or "label_suffix" in p:
        isuf, lsuf = p.get("image_suffix", ""), p.get("label_suffix", "")
        if isuf and image_stem.endswith(isuf):
            image_stem = image_stem[: -len(isuf)]
        return image_stem + lsuf
    return image_stem


def _channel_count(path: Path) -> int:
    """Channels of an image along its 4th axis (1 for a 2D/3D image), from the header only."""
    import SimpleITK as sitk

    if path.is_dir() or not is_volume_path(path):
        return 1
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
    except RuntimeError as e:
        msg = " ".join(str(e).split())[-200:]
        raise DataError(path, f"cannot be read as a volume ({msg})") from None
    return int(reader.GetSize()[3]) if reader.GetDimension() == 4 else 1


def _channel_name(desc: DatasetDescription, c: int) -> str:
    return desc.channel_names[c] if c < len(desc.channel_names) else f"{c:04d}"


def _channel_pairs(
    desc: DatasetDescription, case: str, label: Path, files: dict[int | None, Path]
) -> tuple[list[CasePair], list[tuple[Path, str]]]:
    """The units of one case given its channel files (nnU-Net) or its one (4D) image."""
    first = files[min(files, key=lambda k: -1 if k is None else k)]
    if None in files and len(files) == 1:
        if not desc.channel_mode:
            return [CasePair(case, first, label)], []
        n = len(desc.channel_names) or _channel_count(first)
        names = tuple(_channel_name(desc, c) for c in range(n))
        chosen = resolve_channels(first, desc.channel, names)
        read = lambda c: (first, c)  # noqa: E731
    else:
        if None in files:
            return [], [(files[None], f"case {case!r} mixes files with and without _NNNN suffixes")]
        n = max(len(desc.channel_names), max(k for k in files if k is not None) + 1)
        names = tuple(_channel_name(desc, c) for c in range(n))
        chosen = resolve_channels(label, desc.channel, names)
        missing = [c for c in chosen if c not in files]
        if missing:
            return [], [
                (first, f"case {case!r} has no file for channel(s) {missing} (_{missing[0]:04d})")
            ]
        read = lambda c: (files[c], None)  # noqa: E731
    units = []
    for c in chosen:
        image, read_channel = read(c)
        units.append(
            CasePair(
                case,
                image,
                label,
                channel=c,
                read_channel=read_channel,
                tag=sanitize_case(names[c]) if len(chosen) > 1 else "",
                modality=names[c] if desc.channel_modality else None,
            )
        )
    return units, []


def find_pairs(
    desc: DatasetDescription, skipped: list[tuple[Path, str]] | None = None
) -> tuple[list[CasePair], list[tuple[Path, str]]]:
    """(units sorted by case then channel, unpaired images with the reason), from the description.

    Case id: the sanitized label stem (for the paper layout: the whole image stem, which is also
    the image id). An image whose stem is ``<label stem>_NNNN`` is channel NNNN of that case
    (nnU-Net); the channels asked for (``desc.channel``, default the first) become units of the
    same case. Two sources that sanitize to one case id raise ``DataError``; so does a source
    with no images at all. With ``desc.roi``, every 2D image needs its ROI file
    (``layouts.find_roi``), else it is reported as unpaired.

    ``skipped`` (when given) receives the files left out without being a case: labels no image
    pairs with (``orphan label: no image ...``) and symlinks that cannot be followed (loops,
    broken), each with the reason.
    """
    if desc.label_parts is not None:
        return _part_pairs(desc, skipped)
    images = _entries(desc.source, desc.images, skipped)
    if not images:
        raise DataError(
            desc.source / desc.images,
            f"no images found; expected files ({', '.join((*IMAGE_2D_SUFFIXES, *VOLUME_SUFFIXES))}) "
            "or DICOM series folders",
        )
    labels: dict[str, Path] = {}
    for p in _entries(desc.source, desc.labels, skipped, slice_folders=True):
        key = pairing_key(desc, p)
        if key is None:
            if skipped is not None:
                skipped.append((p, f"label path does not match {desc.pairing['key_regex']!r}"))
            continue
        labels[key] = p
    used: set[str] = set()
    rois = {file_stem(p): p for p in _entries(desc.source, desc.roi)} if desc.roi else None
    cases: dict[str, tuple[Path, dict[int | None, Path], str]] = {}
    missing: list[tuple[Path, str]] = []
    for img in images:
        key = pairing_key(desc, img)
        if key is None:
            missing.append((img, f"image path does not match {desc.pairing['key_regex']!r}"))
            continue
        stem = key
        lstem = label_stem_for(desc, stem)
        lab = labels.get(lstem)
        m = CHANNEL_SUFFIX.match(stem)
        if lab is None and m is not None and m.group(1) in labels:
            lstem, lab = m.group(1), labels[m.group(1)]
        if lab is not None:
            used.add(lstem)
        if lab is None:
            missing.append((img, f"no label named {lstem!r} in {desc.source / desc.labels}"))
            continue
        ch = (
            int(m.group(2))
            if m is not None and m.group(1) == lstem and not desc.paper_layout
            else None
        )
        case = stem if desc.paper_layout else sanitize_case(lstem)
        _, files, _ = cases.setdefault(
            case, (lab, {}, m.group(1) if ch is not None and m else stem)
        )
        if ch in files or (cases[case][0] != lab):
            other = files.get(ch) or next(iter(files.values()))
            raise DataError(img, f"case id {case!r} is also the case id of {other}; rename one")
        files[ch] = img
    pairs: list[CasePair] = []
    for case in sorted(cases):
        lab, files, base_stem = cases[case]
        units, bad = _channel_pairs(desc, case, lab, files)
        missing += bad
        for u in units:
            if rois is not None:
                roi = find_roi(rois, [file_stem(u.image), base_stem, file_stem(lab)])
                if roi is None:
                    missing.append(
                        (
                            u.image,
                            f"no ROI file for {file_stem(u.image)!r} in {desc.source / str(desc.roi)}",
                        )
                    )
                    continue
                u = CasePair(
                    u.case, u.image, u.label, u.channel, u.read_channel, u.tag, u.modality, roi
                )
            pairs.append(u)
    if skipped is not None:
        for lstem, lab in sorted(labels.items()):
            if lstem not in used:
                skipped.append((lab, f"orphan label: no image pairs with it in {desc.images}"))
    return pairs, missing


def part_values(desc: DatasetDescription) -> dict[str, int]:
    """Class name -> source value of each structure file (``label_parts``): its class value, or
    its ``exclude`` value (so an excluded structure is read, then counted and dropped)."""
    return {**(desc.exclude or {}), **(desc.classes or {})}


def _part_pairs(
    desc: DatasetDescription, skipped: list[tuple[Path, str]] | None = None
) -> tuple[list[CasePair], list[tuple[Path, str]]]:
    """Cases of a dataset whose labels are one binary file per structure (``label_parts``): an
    image pairs with the file of every structure that has its pairing key (file stem, or
    ``pairing.key_regex``); a structure file missing for a case makes it a bad case."""
    assert desc.label_parts is not None
    images = _entries(desc.source, desc.images, skipped)
    if not images:
        raise DataError(desc.source / desc.images, "no images found")
    values = part_values(desc)
    files: dict[str, dict[str, Path]] = {}
    for name, spec in desc.label_parts.items():
        files[name] = {}
        for p in _entries(desc.source, spec, skipped):
            key = pairing_key(desc, p)
            if key is not None:
                files[name][key] = p
    pairs, missing = [], []
    seen: dict[str, Path] = {}
    for img in images:
        key = pairing_key(desc, img)
        if key is None:
            missing.append((img, f"image path does not match {desc.pairing.get('key_regex')!r}"))
            continue
        lkey = label_stem_for(desc, key)
        absent = [n for n in desc.label_parts if lkey not in files[n]]
        if absent:
            where = desc.source / desc.label_parts[absent[0]]
            missing.append(
                (
                    img,
                    f"no {absent[0]!r} file {lkey!r} in {where} ({len(absent)} structure(s) missing)",
                )
            )
            continue
        case = sanitize_case(lkey)
        if case in seen:
            raise DataError(
                img, f"case id {case!r} is also the case id of {seen[case]}; rename one"
            )
        seen[case] = img
        parts = tuple(sorted((values[n], files[n][lkey]) for n in desc.label_parts))
        pairs.append(CasePair(case, img, parts[0][1], label_parts=parts))
    return sorted(pairs, key=lambda p: p.case), missing
