"""Files and folders to image paths: plain folders, DICOMDIR, extension-less DICOM."""

from __future__ import annotations

from pathlib import Path

from medflip_core.errors import ImageLoadError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
)


def is_dicom_file(path: Path) -> bool:
    """True for a Part 10 file (128-byte preamble + 'DICM'); read without pydicom, which takes ~0.15 s to
    import and is needed only once a DICOM is decoded."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _is_candidate(path: Path) -> bool:
    if path.name.startswith(".") or path.name.upper() == "DICOMDIR":
        return False
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    return path.suffix == "" and is_dicom_file(path)


def dicomdir_files(path: Path) -> list[Path]:
    """The image files a DICOMDIR references."""
    from pydicom import dcmread

    try:
        ds = dcmread(path)
    except Exception as exc:  # pydicom's words (which may quote header values) are not for the user
        raise ImageLoadError(f"{path}: this DICOMDIR (the index of a DICOM disc or folder) is damaged or incomplete "
                             "and cannot be read. Open the folder that holds it instead: its image files are then "
                             "found without the index.") from exc
    root = path.parent
    files = []
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if ref is None:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        candidate = root.joinpath(*parts)
        if candidate.is_file():
            files.append(candidate)
    return files


def iter_image_files(path: str | Path) -> list[Path]:
    """Image files for a path: a file -> itself; a DICOMDIR -> what it references; a folder -> its images."""
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file or folder.")
    if path.is_file():
        if path.name.upper() == "DICOMDIR":
            files = dicomdir_files(path)
            if not files:
                raise ImageLoadError(f"{path}: the DICOMDIR references no image files that exist.")
            return files
        return [path]
    dicomdir = path / "DICOMDIR"
    if dicomdir.is_file():
        try:
            files = dicomdir_files(dicomdir)
        except ImageLoadError:  # a broken index: the folder's files are still there to find
            files = []
        if files:
            return files
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_candidate(p)
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise ImageLoadError(f"{path}: the folder contains no images (DICOM, PNG, JPEG, TIFF or BMP).")
    return files
