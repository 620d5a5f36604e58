"""Image I/O: DICOM, PNG, JPEG, TIFF to a display-ready Radiograph. No torch, no Qt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from medflip_core.errors import ImageLoadError
from medflip_core.imaging.folders import IMAGE_SUFFIXES, is_dicom_file, iter_image_files
from medflip_core.imaging.messages import unreadable
from medflip_core.imaging.pixel_cache import PixelCache, default_cache
from medflip_core.imaging.radiograph import IDENTIFYING_KEYWORDS, ImageMetadata, Radiograph, Window
from medflip_core.imaging.raster_reader import load_raster

MAX_PIXELS = 100_000_000
log = logging.getLogger(__name__)

__all__ = [
    "IDENTIFYING_KEYWORDS", "IMAGE_SUFFIXES", "MAX_PIXELS", "ImageLoadError", "ImageMetadata", "PixelCache",
    "Radiograph", "Window", "default_cache", "iter_image_files", "load_folder", "load_image",
]


def load_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> Radiograph:
    """One image file as a Radiograph. Raises ImageLoadError (only) with a message for a person."""
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file.")
    if path.is_dir():
        raise ImageLoadError(f"{path} is a folder; open the images inside it.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageLoadError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    if size == 0:
        raise ImageLoadError(f"{path.name}: the file is empty (0 bytes).")
    try:
        if is_dicom_file(path):  # the 'DICM' mark, whatever the name; anything else may still be a PNG or JPEG
            from medflip_core.imaging.dicom_reader import load_dicom  # pydicom: imported at the first DICOM

            return load_dicom(path, max_pixels)
        return load_raster(path, max_pixels)
    except ImageLoadError:
        raise
    except MemoryError as exc:
        raise ImageLoadError(f"{path.name}: not enough memory to decode this image.") from exc
    except Exception as exc:  # a decoder's own exception must never reach the user as a traceback
        log.info("%s: unexpected failure while loading", path.name, exc_info=True)
        raise ImageLoadError(unreadable(path)) from exc


def load_folder(
    path: str | Path, *, max_pixels: int = MAX_PIXELS, progress: Callable[[int, int], None] | None = None
) -> tuple[list[Radiograph], list[str]]:
    """Every image under a path, each holding its pixels; unreadable ones are reported, not fatal: (radiographs,
    error messages). For a study a user opens, `medflip_core.imaging.opening.open_images` keeps memory bounded.

    `progress(done, total)` is called after each file (the app's progress bar)."""
    images, errors = [], []
    files = iter_image_files(path)
    for i, file in enumerate(files):
        try:
            images.append(load_image(file, max_pixels=max_pixels))
        except ImageLoadError as exc:
            errors.append(str(exc))
        if progress is not None:
            progress(i + 1, len(files))
    return images, errors
