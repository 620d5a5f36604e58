"""The sentences a researcher reads when a file cannot be opened: what the file is and what is wrong (a short
first sentence, for a summary), the details, and what to do. They never quote a decoder's own message (which can
name a library, stop mid-sentence or carry a header value such as the patient's name) and never name a library;
the details go to the log."""

from __future__ import annotations

import math
from pathlib import Path

COPY_AGAIN = ("Copy it again from the PACS or wherever it came from: it was probably not copied or downloaded "
              "completely.")
EXPORT_AGAIN = "Export it again from its source; if the new copy fails too, the source file itself is damaged."
RASTER_FORMATS = "PNG, JPEG, TIFF or BMP"
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ""})

# The first bytes of files a researcher may pick by mistake, and what to say they are.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "it is a PDF document"),
    (b"PK\x03\x04", "it is a ZIP archive (extract it, then open the images inside)"),
    (b"\x1f\x8b", "it is a gzip-compressed archive (extract it, then open the images inside)"),
    (b"<?xml", "it is an XML document (a report file?)"),
)


def _content(path: Path) -> str:
    """What the file's first bytes say it is, as a clause ('' when they say nothing useful)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return ""
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if head and b"\0" not in head:
        try:
            head.decode("utf-8")
            return "it contains text"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut by the 4 KB read
                return "it contains text"
    return ""


def not_an_image(path: Path) -> str:
    """For a file that is neither a DICOM file nor a raster image any reader here knows."""
    content = _content(path)
    if path.suffix.lower() in DICOM_SUFFIXES and path.suffix:
        what = (f"{path.name}: not a DICOM file, although it is named like one (it has no DICOM header), and not a "
                f"{RASTER_FORMATS} image either")
    else:
        what = f"{path.name}: neither a DICOM file nor a {RASTER_FORMATS} image"
    what += f"; {content}." if content else "."
    return f"{what} Open the radiographs' DICOM files (or {RASTER_FORMATS} exports of them)."


def dicom_header_unreadable(path: Path, size: int) -> str:
    return (f"{path.name}: this DICOM file is damaged or incomplete. Its header cannot be read to the end (the file "
            f"is {size:,} bytes). {COPY_AGAIN}")


def dicom_truncated_in_header(path: Path, size: int, image: str = "") -> str:
    """The file ends before its pixel data element starts; `image` describes the image if the header says."""
    described = f"Its header describes {image}, but the file" if image else "The file"
    return (f"{path.name}: this DICOM file is truncated. {described} ends after {size:,} bytes, before any pixel "
            f"data. {COPY_AGAIN}")


def dicom_compressed_truncated(path: Path, compression: str, found: int, image: str = "") -> str:
    what = f"{image}, compressed as {compression}" if image else f"compressed as {compression}"
    return (f"{path.name}: this DICOM image is truncated. Its pixel data ({what}) ends early, after {found:,} "
            f"bytes of the compressed stream, before the end of the image. {COPY_AGAIN}")


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def _share(found: int, expected: int) -> str:
    """'99.9 %', rounded down so that a file short by a few bytes never reads as 100 %."""
    return f"{math.floor(1000 * found / expected) / 10:.1f} %"


def dicom_native_truncated(path: Path, image: str, expected: int, found: int) -> str:
    return (f"{path.name}: this DICOM image is truncated. {_capital(image)} needs {expected:,} bytes of pixel data, "
            f"but the file ends after {found:,} of them ({_share(found, expected)}). {COPY_AGAIN}")


def dicom_native_mismatch(path: Path, image: str, expected: int, found: int) -> str:
    return (f"{path.name}: this DICOM file's header does not match its pixel data. {_capital(image)} needs "
            f"{expected:,} bytes, but the file holds {found:,}. {EXPORT_AGAIN}")


def dicom_no_image(path: Path, sop_class: str, size: int) -> str:
    if sop_class:
        return (f"{path.name}: this DICOM file contains no image. It is a {sop_class} object (a report, "
                "measurement or other document), not a radiograph. Open the study's image files instead.")
    return (f"{path.name}: this DICOM file contains no image and does not say what it is (no SOP class). It may be "
            f"incomplete (the file is {size:,} bytes). {COPY_AGAIN}")


def dicom_no_decoder(path: Path, compression: str) -> str:
    return (f"{path.name}: this DICOM image is compressed as {compression}, which this program cannot decode. "
            "Export it uncompressed (or as JPEG or JPEG 2000) from the PACS or viewer it came from and open that copy.")


def dicom_damaged_pixels(path: Path, compression: str) -> str:
    """`compression`: the transfer syntax's name, '' for uncompressed pixel data."""
    what = f"pixel data, compressed as {compression}," if compression else "uncompressed pixel data"
    return f"{path.name}: this DICOM image's {what} is damaged and cannot be decoded. {EXPORT_AGAIN}"


def raster_damaged(path: Path, fmt: str, truncated: bool) -> str:
    if truncated:
        return f"{path.name}: this {fmt} image is truncated. The file ends before its image data does. {COPY_AGAIN}"
    return f"{path.name}: this {fmt} image is damaged and cannot be decoded. {EXPORT_AGAIN}"


def unreadable(path: Path) -> str:
    """The last resort, for a failure nothing above foresaw (the details are logged)."""
    return (f"{path.name}: this image could not be read. The file is damaged or stored in a form this program does "
            f"not support. {EXPORT_AGAIN}")
