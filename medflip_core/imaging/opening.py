"""Opening files and folders as a study: every image read once for its metadata and thumbnail, its full pixels
dropped (decoded again on demand, into the bounded PixelCache), duplicates opened once and named.

Memory grows by a thumbnail and the metadata per image, not by its pixels: a folder of 1,000 full-size films
opens in a few hundred megabytes. Progress counts files over every given path (`n of N`), `should_stop()`
ends the load after the file in hand, and `on_images` receives the images in chunks as they are read, so
the first one can be on screen long before the last is read.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medflip_core.errors import ImageLoadError
from medflip_core.imaging.folders import is_dicom_file, iter_image_files
from medflip_core.imaging.radiograph import Radiograph

if TYPE_CHECKING:
    from medflip_core.imaging.reader_processes import ReaderProcesses

Progress = Callable[[int, int], None]
CHUNK_SECONDS = 0.25  # how often `on_images` receives what was read since (the first image at once)
_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ""}


@dataclass
class LoadResult:
    images: list[Radiograph] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_paths: list[str] = field(default_factory=list)  # given paths that gave no image at all
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # opened file -> files that are the same image
    total: int = 0  # image files found under the given paths
    done: int = 0  # files read before the end (or the cancel)
    cancelled: bool = False

    def duplicate_message(self) -> str:
        """One sentence about the files opened once because they are the same image as another ("" if none)."""
        if not self.duplicates:
            return ""
        n = sum(len(v) for v in self.duplicates.values())
        files = "file is" if n == 1 else "files are"
        if len(self.duplicates) == 1:
            first = Path(next(iter(self.duplicates))).name
            return f"{n:,} {files} the same image as {first} and {'was' if n == 1 else 'were'} opened once."
        return (f"{n:,} {files} the same image as one of {len(self.duplicates):,} other opened files and "
                f"{'was' if n == 1 else 'were'} opened once.")

    def duplicate_details(self, limit: int = 50) -> str:
        """Which file is the same image as which (links to one file, or copies with one SOP Instance UID)."""
        lines = []
        for first, others in self.duplicates.items():
            shown = ", ".join(Path(o).name for o in others[:limit])
            more = f" and {len(others) - limit:,} more" if len(others) > limit else ""
            lines.append(f"{first}: the same image as {shown}{more}")
        return "\n".join(lines)


def file_key(path: str | Path) -> tuple[str, str]:
    """The same file, however it is reached (symbolic links, relative paths)."""
    return ("file", os.path.realpath(path))


def instance_key(sop_instance_uid: str, rows: int, columns: int, photometric: str) -> tuple[str, ...] | None:
    """The same DICOM image in another file: one SOP Instance UID, and the same pixel description (a file whose
    header was altered, e.g. relabelled MONOCHROME1, keeps its UID but is not displayed the same way)."""
    if not sop_instance_uid:
        return None
    return ("instance", sop_instance_uid, str(rows), str(columns), photometric or "MONOCHROME2")


def same_image_keys(rg: Radiograph) -> list[Hashable]:
    """Every key under which another file would be the same image as this one."""
    md = rg.metadata
    keys: list[Hashable] = [file_key(md.source_path)]
    key = instance_key(md.sop_instance_uid, md.rows, md.columns, md.photometric)
    if key is not None:
        keys.append(key)
    return keys


def _header_key(path: Path) -> tuple[str, ...] | None:
    """The instance key from the DICOM header alone (no pixel data read), or None (not DICOM, unreadable:
    the full read then says what is wrong)."""
    if path.suffix.lower() not in _DICOM_SUFFIXES and not is_dicom_file(path):
        return None
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True,
                             specific_tags=["SOPInstanceUID", "Rows", "Columns", "PhotometricInterpretation"])
        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        if photometric not in ("MONOCHROME1", "MONOCHROME2"):
            return None  # colour images are converted to grey on reading: compare after the full read
        return instance_key(str(ds.get("SOPInstanceUID", "") or "").strip(), int(ds.get("Rows", 0) or 0),
                            int(ds.get("Columns", 0) or 0), photometric)
    except Exception:  # any unreadable header: the full read reports it in words
        return None


def open_images(
    paths: Sequence[str | Path],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_images: Callable[[list[Radiograph]], None] | None = None,
    read: Callable[[Path], Radiograph] | None = None,
    cache: object = None,
    reader: ReaderProcesses | None = None,
) -> LoadResult:
    """Every image under the given files/folders, opened once each, pixels on demand (see the module doc).

    Unreadable files become messages, never exceptions. `read(path)` is the reader (default `load_image`),
    `cache` the PixelCache the images decode into later (default: the process's). With `reader`, the files are
    read by `load_image` in its worker processes instead, a few ahead (`2 x` its processes), so that this
    thread never holds the GIL for a decoder; the images, duplicates, messages and progress are the same, in
    the same order."""
    if read is None:
        from medflip_core.imaging import load_image as read
    result = LoadResult()
    plan: list[tuple[str, Path | ImageLoadError]] = []  # files, and where a given path lists none, why (in order)
    for given in paths:
        try:
            plan.extend((str(given), f) for f in iter_image_files(given))
        except ImageLoadError as exc:
            plan.append((str(given), exc))
    result.total = sum(isinstance(item, Path) for _, item in plan)
    opened_from: set[str] = set()
    seen: dict[Hashable, str] = {}  # same-image key -> the file opened under it
    pending: list[Radiograph] = []
    last: float | None = None  # when on_images was last called (None: not yet, so the first image goes at once)
    depth = 1 if reader is None else 2 * reader.processes  # files being read at once
    flight: deque[_InFlight] = deque()

    def deliver(force: bool) -> None:
        nonlocal last, pending
        if on_images is not None and pending and (force or last is None or time.monotonic() - last >= CHUNK_SECONDS):
            on_images(pending)
            last, pending = time.monotonic(), []

    def counted() -> None:
        result.done += 1
        if progress is not None:
            progress(result.done, result.total)
        deliver(force=False)

    def land() -> bool:
        """The oldest file in flight, read: into the result. False when the load was stopped meanwhile."""
        item = flight[0]
        if item.future is not None:
            while not wait([item.future], timeout=0.1).done:
                if should_stop is not None and should_stop():
                    return False
        flight.popleft()
        try:
            rg = item.fetch(not result.images)  # the first image: shown next, its pixels kept
        except ImageLoadError as exc:
            result.errors.append(str(exc))
        else:
            keys = same_image_keys(rg)
            first = next((seen[k] for k in keys if k in seen), None)
            if first is not None:  # known only after the full read (e.g. a colour DICOM)
                result.duplicates.setdefault(first, []).append(str(item.path))
            else:
                for key in keys:
                    seen[key] = str(item.path)
                result.images.append(rg)
                pending.append(rg)
            opened_from.add(item.given)
        counted()
        return True

    for given, path in plan:
        if isinstance(path, ImageLoadError):
            result.errors.append(str(path))
            result.failed_paths.append(given)
            continue
        if should_stop is not None and should_stop():
            result.cancelled = True
            break
        key = file_key(path)
        header = None if key in seen else _header_key(path)
        if flight and any(k in item.keys for item in flight for k in (key, header) if k is not None):
            while flight:  # the same image as one being read: whether it opens is known once that one lands
                if not land():
                    break
            if flight:
                result.cancelled = True
                break
        first = seen.get(key)
        if first is None and header is not None:
            first = seen.get(header)
        if first is not None:
            result.duplicates.setdefault(first, []).append(str(path))
            opened_from.add(given)
            counted()
            continue
        first_read = not result.images and not flight
        flight.append(_InFlight.start(given, path, (key, header), read, cache, reader, first_read))
        if len(flight) >= depth and not land():
            result.cancelled = True
            break
    while flight and not result.cancelled:
        if not land():
            result.cancelled = True
    for item in flight:  # stopped: the reads not started are dropped, the running ones end with their file
        if item.future is not None and reader is not None:
            reader.drop(item.future)
    deliver(force=True)
    result.failed_paths.extend(g for g in dict.fromkeys(str(p) for p in paths)
                               if g not in opened_from and g not in result.failed_paths and not result.cancelled)
    return result


@dataclass
class _InFlight:
    """One file being read: in this thread when `fetch` is called (no future), or in a worker process."""

    given: str
    path: Path
    keys: tuple[Hashable | None, ...]
    fetch: Callable[[bool], Radiograph]  # keep -> the opened image (its pixels in the cache when keep)
    future: Future | None = None

    @classmethod
    def start(cls, given: str, path: Path, keys: tuple[Hashable | None, ...], read: Callable[[Path], Radiograph],
              cache: object, reader: ReaderProcesses | None, first: bool) -> _InFlight:
        if reader is None:
            return cls(given, path, keys, lambda keep: read(path).without_pixels(cache, keep=keep))
        future = reader.submit_open(path, keep_pixels=first)

        def fetch(keep: bool) -> Radiograph:
            rg, arrays = reader.result(future, path, first)
            rg.use_cache(cache)
            if keep and arrays is not None:
                rg.adopt(arrays)
            return rg

        return cls(given, path, keys, fetch, future)
