"""DICOM radiographs through pydicom (pylibjpeg decoders), SimpleITK as the fallback decoder."""

from __future__ import annotations

import logging
import mmap
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import messages
from medflip_core.imaging.folders import is_dicom_file  # noqa: F401 - where it used to live
from medflip_core.imaging.radiograph import IDENTIFYING_KEYWORDS, ImageMetadata, Radiograph, Window
from medflip_core.imaging.tag_rows import dataset_rows
from medflip_core.imaging.windowing import apply_window, percentile_window

log = logging.getLogger(__name__)

# Which package decodes which compressed transfer syntax (for the log when none is installed).
DECODER_HINTS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
    "1.2.840.10008.1.2.4.110": "a JPEG XL decoder (none is available for pydicom yet)",
    "1.2.840.10008.1.2.4.111": "a JPEG XL decoder (none is available for pydicom yet)",
    "1.2.840.10008.1.2.4.112": "a JPEG XL decoder (none is available for pydicom yet)",
}
_PIXEL_KEYWORDS = {"PixelData", "FloatPixelData", "DoubleFloatPixelData"}


def read_dataset(path: Path, stop_before_pixels: bool = False) -> Dataset:
    """The dataset, or an ImageLoadError in words (pydicom's own message goes to the log only)."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise ImageLoadError(messages.not_an_image(path)) from exc
    except Exception as exc:  # EOF, struct and value errors of a header cut or broken anywhere
        log.info("%s: pydicom could not read the header: %s: %s", path.name, type(exc).__name__, exc)
        raise ImageLoadError(messages.dicom_header_unreadable(path, _file_size(path))) from exc


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _image_words(ds: Dataset) -> str:
    """'a 1841x1955 image of 16-bit pixels' from the header ('' when it does not say)."""
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if not rows or not cols:
        return ""
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
    bits = ds.get("BitsAllocated")
    words = f"a {f'{frames}-frame ' if frames > 1 else ''}{cols}x{rows} image"
    return f"{words} of {bits}-bit pixels" if bits else words


def _compression(ts_uid: str) -> str:
    """A transfer syntax as a person reads it: its name and UID."""
    name = UID(ts_uid).name
    return f"{name} ({ts_uid})" if name and name != ts_uid else ts_uid


# (7FE0,0010) Pixel Data with VR OB and undefined length: the start of encapsulated (compressed) pixel data,
# little- and big-endian.
_ENCAPSULATED_START = (b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff", b"\x7f\xe0\x00\x10OB\x00\x00\xff\xff\xff\xff")


def _encapsulated_pixel_start(path: Path) -> int | None:
    """File offset of the compressed pixel data element, if the file holds one."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = [i for i in (data.find(marker, 132) for marker in _ENCAPSULATED_START) if i >= 0]
    except (OSError, ValueError):
        return None
    return min(found) if found else None


def _no_pixel_data(path: Path) -> str:
    """Why a DICOM file read without error has no pixel data: cut inside its compressed pixel data (pydicom then
    returns an empty dataset), cut before it, or a document that never had an image."""
    size = _file_size(path)
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # the header itself breaks: said as such
        header = None
    image = _image_words(header) if header is not None else ""
    tsyntax = header.file_meta.get("TransferSyntaxUID") if header is not None and hasattr(header, "file_meta") else None
    start = _encapsulated_pixel_start(path)
    if start is not None:
        compression = getattr(tsyntax, "name", "") or str(tsyntax or "") or "an unknown method"
        return messages.dicom_compressed_truncated(path, compression, max(0, size - start - 12), image)
    if header is None:
        return messages.dicom_header_unreadable(path, size)
    sop = header.get("SOPClassUID") or (header.file_meta.get("MediaStorageSOPClassUID")
                                        if hasattr(header, "file_meta") else None)
    sop_name = getattr(sop, "name", "") or (str(sop) if sop else "")
    if image or "Image" in sop_name:  # an image whose file ends before its pixel data
        return messages.dicom_truncated_in_header(path, size, image)
    return messages.dicom_no_image(path, sop_name, size)


def _native_size_problem(path: Path, ds: Dataset, encapsulated: bool) -> str | None:
    """Uncompressed pixel data shorter than its header says: the file was cut (the element ends at the end of the
    file, short of its own length), or the header does not describe these pixels."""
    if encapsulated or "PixelData" not in ds:
        return None
    elem = ds.get_item("PixelData")
    value = getattr(elem, "value", None)
    if not isinstance(value, bytes | bytearray):
        return None
    try:
        expected = int(get_expected_length(ds, unit="bytes"))
    except Exception:  # the header's image description is itself incomplete: the decoder will say so
        return None
    found = len(value)
    if found >= expected:
        return None
    declared = getattr(elem, "length", None)
    image = _image_words(ds) or "the image"
    if declared is None or declared == 0xFFFFFFFF or found < declared:
        return messages.dicom_native_truncated(path, image, expected, found)
    return messages.dicom_native_mismatch(path, image, expected, found)


def _decoder_available(ts_uid: str) -> bool:
    try:
        return bool(get_decoder(ts_uid).is_available)
    except (NotImplementedError, ValueError):
        return False


def _str(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2:
            try:
                row, col = float(value[0]), float(value[1])
            except (TypeError, ValueError):
                continue
            if row > 0 and col > 0:
                return (row, col)
    return None


def _first(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _decode_with_simpleitk(path: Path) -> np.ndarray:
    import SimpleITK as sitk  # slow import; only when pydicom cannot decode

    image = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(image)
    # SimpleITK applies rescale slope/intercept itself; arrays are (frames, rows, cols[, samples])
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        arr = arr[0]
    return arr


def _to_grey(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3].astype(np.float32)
        return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return arr


def load_dicom(path: Path, max_pixels: int) -> Radiograph:
    ds = read_dataset(path)
    notes: list[str] = []
    if not (_PIXEL_KEYWORDS & set(ds.dir())):
        raise ImageLoadError(_no_pixel_data(path))
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
    if rows * cols > max_pixels:
        raise ImageLoadError(
            f"{path.name}: the image is {cols}x{rows} pixels, above the limit of {max_pixels:,} pixels "
            "(a guard against decompression bombs)."
        )
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    ts_uid = str(tsyntax) if tsyntax else "1.2.840.10008.1.2"
    ts_name = getattr(tsyntax, "name", ts_uid) if tsyntax else "Implicit VR Little Endian"
    photometric = _str(ds, "PhotometricInterpretation").upper()
    encapsulated = UID(ts_uid).is_encapsulated if ts_uid else False
    problem = _native_size_problem(path, ds, encapsulated)
    if problem:
        raise ImageLoadError(problem)

    used_sitk = False
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for missing decoders and bad streams
        try:
            arr = _decode_with_simpleitk(path)
            used_sitk = True
            notes.append("decoded with SimpleITK (pydicom had no decoder for it)")
        except Exception:
            hint = f"; it needs {DECODER_HINTS[ts_uid]}" if ts_uid in DECODER_HINTS else ""
            log.info("%s: no decoder read the pixel data (%s); pydicom said %s: %s%s", path.name, ts_uid,
                     type(exc).__name__, exc, hint)
            if encapsulated and not _decoder_available(ts_uid):
                raise ImageLoadError(messages.dicom_no_decoder(path, _compression(ts_uid))) from exc
            raise ImageLoadError(messages.dicom_damaged_pixels(path, ts_name if encapsulated else "")) from exc
    if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        arr = arr[0]
        notes.append(f"multi-frame: showing frame 1 of {frames}")
    if arr.ndim not in (2, 3):
        raise ImageLoadError(f"{path.name}: this DICOM image has a pixel layout this program cannot show "
                             f"({arr.ndim} dimensions after taking its first frame).")

    if photometric not in ("MONOCHROME1", "MONOCHROME2") or arr.ndim == 3:
        raw = _to_grey(arr).astype(np.float32)
        window = percentile_window(raw)
        pixels = apply_window(raw, window.center, window.width)
        invert = False
    else:
        raw = arr.astype(np.float32) if used_sitk else apply_modality_lut(arr, ds).astype(np.float32)
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if center is not None and width is not None and width > 0:
            window = Window(center=center, width=width, source="dicom")
            pixels = apply_window(raw, center, width)
        elif "VOILUTSequence" in ds and not used_sitk:
            voi = apply_voi_lut(arr, ds, index=0).astype(np.float32)
            lo, hi = float(voi.min()), float(voi.max())
            pixels = (voi - lo) / max(hi - lo, 1e-6)
            base = percentile_window(raw)
            window = Window(center=base.center, width=base.width, source="voi_lut")
        else:
            window = percentile_window(raw)
            pixels = apply_window(raw, window.center, window.width)
        invert = photometric == "MONOCHROME1"
        if photometric == "MONOCHROME2" and _str(ds, "PresentationLUTShape").upper() == "INVERSE":
            invert = True
            notes.append("Presentation LUT Shape INVERSE: displayed inverted")
        if invert:
            pixels = 1.0 - pixels

    public_tags, identifying = dataset_rows(ds, IDENTIFYING_KEYWORDS, skip=_PIXEL_KEYWORDS)
    patient = {kw: _str(ds, kw) for kw in sorted(IDENTIFYING_KEYWORDS) if kw in ds and _str(ds, kw)}
    sop = ds.get("SOPClassUID")
    metadata = ImageMetadata(
        source_path=str(path),
        format="DICOM",
        rows=int(raw.shape[0]),
        columns=int(raw.shape[1]),
        photometric=photometric or "MONOCHROME2",
        modality=_str(ds, "Modality"),
        body_part=_str(ds, "BodyPartExamined"),
        view_position=_str(ds, "ViewPosition"),
        bits_stored=int(ds.get("BitsStored")) if ds.get("BitsStored") is not None else None,
        pixel_spacing=_spacing(ds),
        window=window,
        transfer_syntax=f"{ts_name} ({ts_uid})",
        manufacturer=_str(ds, "Manufacturer"),
        study_date=_str(ds, "StudyDate"),
        study_description=_str(ds, "StudyDescription"),
        series_description=_str(ds, "SeriesDescription"),
        series_number=_str(ds, "SeriesNumber"),
        instance_number=_str(ds, "InstanceNumber"),
        study_instance_uid=_str(ds, "StudyInstanceUID"),
        series_instance_uid=_str(ds, "SeriesInstanceUID"),
        sop_instance_uid=_str(ds, "SOPInstanceUID"),
        number_of_frames=frames,
        sop_class=getattr(sop, "name", str(sop or "")),
        species=_str(ds, "PatientSpeciesDescription"),
        acquisition_description=" ".join(filter(None, (_str(ds, k) for k in (
            "ProtocolName", "AcquisitionDeviceProcessingDescription", "PerformedProcedureStepDescription")))),
        dicom_tags=public_tags,
    )
    pixels = np.clip(np.nan_to_num(pixels, nan=0.0), 0.0, 1.0).astype(np.float32)
    return Radiograph(pixels=pixels, raw=raw, metadata=metadata, patient=patient, notes=tuple(notes),
                      identifying_tags=identifying)
