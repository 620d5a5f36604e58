"""Image files read in worker processes, so that the thread of a window never waits on a decoder.

Why processes: pylibjpeg-openjpeg holds the GIL for about a second while it decodes a lossless JPEG 2000 film
(see `medflip_core.imaging.decode_pool`), so a decode in a thread of the app's process freezes its event loop just as
long. A spawned worker process has a GIL of its own. Each job there is `load_image`, the one reader and
windowing path, so the pixels that come back equal the ones `load_image` gives in the caller.

- `ReaderProcesses`: the workers (spawned, importing the imaging stack only: no torch, no Qt). `open_file` is what
  opening a study needs per file (metadata, thumbnail, and the pixels of the image about to be shown);
  `arrays` the full pixels of an opened image. A worker that dies on a file (a decoder crash, the out-of-memory
  killer) costs that file only: the pool starts again and the others are read again, each alone.
- `OnDemandDecoder`: full pixels for the image the user chose, decoded by those workers into the image's pixel
  cache, the newest choice first and then a prefetch (the next image); choices superseded before their decode
  started are dropped, so paging quickly through a study ends on the last image chosen, not on a queue.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from medflip_core.errors import ImageLoadError
from medflip_core.imaging.decode_pool import _spawn_pool as spawn_pool
from medflip_core.imaging.messages import unreadable
from medflip_core.imaging.radiograph import Arrays, Radiograph

Opened = tuple[Radiograph, Arrays | None]  # the image without its pixels, and its pixels when asked for


@dataclass(frozen=True)
class _Shared:
    """Arrays a worker left in a block of shared memory: pickling 28 MB of a full-size film's pixels through the
    pool's pipe took 0.2-0.3 s, several times its decode when it is uncompressed; this costs two copies."""

    name: str
    specs: tuple[tuple[tuple[int, ...], str, int], ...]  # (shape, dtype, offset) per array


def _share(arrays: Arrays) -> _Shared:
    block = shared_memory.SharedMemory(create=True, size=max(1, sum(a.nbytes for a in arrays)))
    specs, offset = [], 0
    try:
        for a in arrays:
            np.ndarray(a.shape, a.dtype, buffer=block.buf, offset=offset)[...] = a
            specs.append((a.shape, a.dtype.str, offset))
            offset += a.nbytes
    finally:
        block.close()
    return _Shared(block.name, tuple(specs))


def _take(shared: _Shared) -> Arrays:
    """The arrays, copied out of their shared block, which is then freed."""
    block = shared_memory.SharedMemory(name=shared.name)
    try:
        out = []
        for shape, dtype, offset in shared.specs:
            view = np.ndarray(shape, np.dtype(dtype), buffer=block.buf, offset=offset)
            out.append(view.copy())
            del view
    finally:
        block.close()
        block.unlink()
    return out[0], out[1]


def _taken(value):
    """A worker's value with its shared arrays taken (`open_file`'s pair or `read_arrays`' arrays)."""
    if isinstance(value, _Shared):
        return _take(value)
    image, shared = value
    return image, (_take(shared) if shared is not None else None)


def open_file(path: str, keep_pixels: bool) -> tuple[Radiograph, _Shared | None]:
    """In a worker: `load_image(path)` as an opened study keeps it (metadata and thumbnail), with its full pixels
    when `keep_pixels` (the image shown first need not be decoded twice). Raises ImageLoadError."""
    from medflip_core.imaging import load_image

    image = load_image(path)
    return image.without_pixels(), (_share(image.arrays()) if keep_pixels else None)


def read_arrays(path: str) -> _Shared:
    """In a worker: `load_image(path)`'s (pixels, raw). Raises ImageLoadError."""
    from medflip_core.imaging import load_image

    return _share(load_image(path).arrays())


def _value(future: Future, path: str | Path):
    """A worker's result (its arrays out of shared memory); its ImageLoadError as it is, any other failure as a
    sentence (BrokenProcessPool passes: the caller reads the file again)."""
    try:
        return _taken(future.result())
    except (ImageLoadError, BrokenProcessPool, CancelledError):
        raise
    except Exception as exc:  # a decoder's own exception must never reach the user as a traceback
        raise ImageLoadError(unreadable(Path(path))) from exc


def _release(future: Future) -> None:
    """A read nobody will take (the load stopped while it ran): its shared block is freed when it ends."""
    if not future.cancelled() and future.exception() is None:
        _taken(future.result())


def _ready() -> int:
    return os.getpid()


def default_processes() -> int:
    """Workers for opening files: one per core but one (the window's own thread needs a core), at least one, at
    most four (beyond that, reading the files from disk is the limit, and each worker costs ~100 MB)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class ReaderProcesses:
    """`processes` spawned worker processes that read image files; every method may be called from any thread."""

    def __init__(self, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("a reader needs at least one process")
        self.processes = processes
        self.crashes = 0  # workers lost while reading (each restarts the pool)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise ImageLoadError("The image reader was closed (the window is closing).")
            if self._pool is not None and getattr(self._pool, "_broken", False):  # a worker died: start again
                self.crashes += 1
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            if self._pool is None:
                self._pool = spawn_pool(self.processes)
            return self._pool

    def start(self) -> Future:
        """Start the workers now (a spawned worker takes ~0.5 s to import the imaging stack), so that the
        first file opened does not wait for them; the Future is done when one of them is ready."""
        pool = self._current()
        futures = [pool.submit(_ready) for _ in range(self.processes)]
        return futures[0]

    def submit_open(self, path: str | Path, keep_pixels: bool) -> Future:
        """A Future of `open_file(path, keep_pixels)`; take its value with `result`."""
        return self._submit(open_file, str(path), keep_pixels)

    def _submit(self, fn: Callable, *args) -> Future:
        try:
            try:
                return self._current().submit(fn, *args)
            except BrokenProcessPool:  # a worker died since the last look: a new pool takes it
                self._restart()
                return self._current().submit(fn, *args)
        except RuntimeError as exc:  # close() shut the pool down between the look and the submit
            if self._closed:
                raise ImageLoadError("The image reader was closed (the window is closing).") from exc
            raise

    def result(self, future: Future, path: str | Path, keep_pixels: bool = False, *, full: bool = False):
        """The value of a Future this reader made for `path` (`open_file`'s, or `read_arrays`' when `full`).
        Raises ImageLoadError, also when a worker died: the file is then read once more, alone in a process
        of its own, so only a file that crashes the decoder by itself is lost."""
        fn, args = (read_arrays, (str(path),)) if full else (open_file, (str(path), keep_pixels))
        try:
            return _value(future, path)
        except BrokenProcessPool:
            self._restart()
        with self._lock:
            if self._closed:
                raise ImageLoadError("The image reader was closed (the window is closing).")
        with spawn_pool(1) as alone:
            try:
                return _value(alone.submit(fn, *args), path)
            except BrokenProcessPool as exc:
                raise ImageLoadError(
                    f"{Path(path).name}: the decoding process ended while reading this file (a decoder crash, or "
                    "the system ran out of memory); the image is skipped."
                ) from exc

    @staticmethod
    def drop(future: Future) -> None:
        """A read from `submit_open` that will not be taken: cancelled if it has not started, else its result
        freed when it ends."""
        if not future.cancel():
            future.add_done_callback(_release)

    def arrays(self, path: str | Path) -> Arrays:
        """`load_image(path)`'s (pixels, raw), decoded in a worker (the calling thread waits without the GIL)."""
        return self.result(self._submit(read_arrays, str(path)), path, full=True)

    def load_images(self, paths: Sequence[str | Path], depth: int | None = None
                    ) -> Iterator[tuple[Path, Radiograph | ImageLoadError]]:
        """`load_image` of each path, in order, `depth` files (default two per worker) read at a time: each
        image with its pixels held (a batch reads a film once and lets it go), or its ImageLoadError in its place.
        Closing the iterator early drops the reads in flight."""
        depth = depth or 2 * self.processes
        todo = iter(Path(p) for p in paths)
        flight: deque[tuple[Path, Future]] = deque()

        def submit() -> None:
            path = next(todo, None)
            if path is not None:
                flight.append((path, self._submit(open_file, str(path), True)))

        try:
            for _ in range(depth):
                submit()
            while flight:
                path, future = flight[0]
                try:
                    light, arrays = self.result(future, path, keep_pixels=True)
                except ImageLoadError as exc:
                    flight.popleft()
                    yield path, exc
                    submit()
                    continue
                except CancelledError:  # its pool was shut down before the read started
                    if self._closed:  # the window is closing: the load ends with one sentence, not one per file
                        flight.popleft()
                        raise ImageLoadError("The image reader was closed (the window is closing).") from None
                    flight[0] = (path, self._submit(open_file, str(path), True))  # a restarted pool reads it
                    continue
                flight.popleft()
                submit()
                yield path, Radiograph(arrays[0], arrays[1], light.metadata, light.patient, light.notes,
                                       light.identifying_tags, thumbnail=light.thumbnail)
        finally:
            for _, future in flight:
                self.drop(future)

    def _restart(self) -> None:
        with self._lock:
            broken = self._pool
            if broken is not None and getattr(broken, "_broken", False):  # the first to see the break replaces it
                self.crashes += 1
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def close(self) -> None:
        """Stop the workers: reads not started are dropped, the ones running end with their file."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class OnDemandDecoder:
    """Full pixels of opened images decoded in a ReaderProcesses' worker into each image's pixel cache, one at a
    time, in a thread of its own: the image last `request`ed first, then its prefetch list.

    `on_ready(image, error)` is called from that thread after each requested image (error "" when its pixels
    are in the cache, else a sentence for a person); a prefetch is silent. A request replaces the previous one
    and its prefetch list: an image chosen and left before its decode started is never decoded for it."""

    def __init__(self, reader: ReaderProcesses, on_ready: Callable[[Radiograph, str], None]) -> None:
        self.reader = reader
        self.on_ready = on_ready
        self.decoded = 0  # files decoded (requested or prefetched), for tests and reports
        self._cond = threading.Condition()
        self._wanted: Radiograph | None = None
        self._prefetch: list[Radiograph] = []
        self._working: Radiograph | None = None  # the image whose decode is running
        self._working_requested = False  # ... and whether it was requested (not a prefetch)
        self._closed = False
        self._held: Arrays | None = None  # the requested image's pixels, until the next request
        self._thread = threading.Thread(target=self._run, name="medflip-pixels", daemon=True)
        self._thread.start()

    def request(self, image: Radiograph | None, prefetch: Sequence[Radiograph] = ()) -> None:
        """Decode `image` next (None: nothing is wanted any more, e.g. an image already decoded was chosen), then
        the `prefetch` list. Replaces the previous request and prefetch list."""
        with self._cond:
            self._wanted, self._held = image, None
            self._prefetch = [p for p in prefetch if p is not image]
            self._cond.notify()

    def prefetch(self, images: Sequence[Radiograph]) -> None:
        """Decode these when nothing is requested (replaces the previous prefetch list)."""
        with self._cond:
            self._prefetch = list(images)
            self._cond.notify()

    def pending(self) -> bool:
        """Whether a requested image is still waiting for its pixels (prefetches do not count)."""
        with self._cond:
            return self._wanted is not None or (self._working is not None and self._working_requested)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wanted, self._prefetch = None, []
            self._cond.notify()

    def _next(self) -> tuple[Radiograph | None, bool]:  # with the condition held
        if self._wanted is not None:
            image, self._wanted = self._wanted, None
            return image, True
        while self._prefetch:
            image = self._prefetch.pop(0)
            if not image.is_decoded():
                return image, False
        return None, False

    def _run(self) -> None:
        while True:
            with self._cond:
                image, requested = self._next()
                while image is None and not self._closed:
                    self._cond.wait()
                    image, requested = self._next()
                if self._closed:
                    return
                self._working, self._working_requested = image, requested
            error = ""
            try:
                if not image.is_decoded():
                    arrays = image.adopt(self.reader.arrays(image.path))
                    self.decoded += 1
                    if requested:  # held until the next request, even if the cache has no room for them
                        self._held = arrays
                    del arrays  # a prefetch is the cache's to keep or evict
            except ImageLoadError as exc:
                error = str(exc)
            except Exception as exc:  # a bug must not end the thread: the image says it could not be shown
                error = f"{image.path.name}: could not be decoded ({type(exc).__name__}: {exc})."
            with self._cond:
                self._working, self._working_requested = None, False
                closed = self._closed
            if requested and not closed:
                self.on_ready(image, error)


__all__ = ["OnDemandDecoder", "ReaderProcesses", "default_processes", "open_file", "read_arrays"]
