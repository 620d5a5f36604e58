"""PNG / JPEG / TIFF / BMP radiographs through Pillow."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import messages
from medflip_core.imaging.radiograph import ImageMetadata, Radiograph, Window
from medflip_core.imaging.windowing import apply_window, percentile_window

log = logging.getLogger(__name__)

# How each format's file ends when it is whole: a file without its end marker was cut.
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


def _ends_early(path: Path, fmt: str) -> bool:
    marker = _END_MARKERS.get(fmt)
    if marker is None:
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 64))
            return marker not in fh.read()
    except OSError:
        return False


def load_raster(path: Path, max_pixels: int) -> Radiograph:
    fmt = path.suffix.lstrip(".").upper() or "image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"{path.name}: the image is {width}x{height} pixels, above the limit of {max_pixels:,} "
                    "pixels (a guard against decompression bombs)."
                )
            fmt = image.format or path.suffix.lstrip(".").upper()
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{path.name}: the image is too large to open safely (a guard against decompression "
                             "bombs).") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(messages.not_an_image(path)) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's words stay in the log
        log.info("%s: Pillow could not decode it: %s: %s", path.name, type(exc).__name__, exc)
        truncated = "truncated" in str(exc).lower() or _ends_early(path, fmt)
        raise ImageLoadError(messages.raster_damaged(path, fmt, truncated)) from exc

    notes: list[str] = []
    mode = image.mode
    # modes whose arrays are not grey levels or R, G, B become one that is, so one reading below serves all
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "1":  # bits: read as 0/1 they would show white as 1/255
        image = image.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):  # other colour spaces: their channels are not R, G, B
        image = image.convert("RGB")
    mode = image.mode
    arr = np.asarray(image)
    if arr.ndim == 3:
        if mode in ("LA", "La"):
            arr = arr[..., 0]
        else:
            rgb = arr[..., :3]
            if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
                arr = rgb[..., 0]  # a grey image stored as colour (most JPEG radiographs): any channel is its grey
            else:
                notes.append("colour image converted to grey")
                arr = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    raw = arr.astype(np.float32)
    eight_bit = mode in ("L", "LA", "RGB", "RGBA")  # what P, 1 and the colour spaces were converted to
    if eight_bit:
        window = Window(center=127.5, width=256.0, source="full")
        pixels = np.clip(raw / 255.0, 0.0, 1.0).astype(np.float32)
    else:
        window = percentile_window(raw)
        pixels = apply_window(raw, window.center, window.width)
    bits = 8 if eight_bit else (16 if mode.startswith("I;16") or mode == "I" else 32)
    metadata = ImageMetadata(
        source_path=str(path),
        format=fmt,
        rows=int(raw.shape[0]),
        columns=int(raw.shape[1]),
        photometric="MONOCHROME2",
        bits_stored=bits,
        window=window,
    )
    return Radiograph(pixels=pixels, raw=raw, metadata=metadata, notes=tuple(notes))
