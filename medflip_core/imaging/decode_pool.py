"""Training images decoded in worker processes instead of threads.

Why processes: pylibjpeg-openjpeg holds the GIL while it decodes JPEG 2000, so loader threads cannot run two
decodes at once (`medflip bench loading --decode-only`: two threads decoded lossless JPEG 2000 at 1.00x the
serial speed and two worker processes at 1.79x; for the uncompressed CR, threads 2.04x). Separate processes
decode in parallel whatever the decoder does. A decoder that crashes on a file (a segfault, the out-of-memory
killer) then ends a worker, not the training run: the file is skipped with a message and the pool starts again.

No torch here: a spawned worker imports only the imaging stack.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import load_image
from medflip_core.imaging.augment import augmentation_source
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from medflip_core.processes import worker_start

DECODE_IN = ("threads", "processes")


def decode_for_training(path: str | Path, pre: PreprocessConfig, for_augmentation: bool) -> np.ndarray:
    """What a training loader starts from for one file: the model input, or (when each step augments) the grey
    image reduced to at most twice the model input's side (`augmentation_source`). Raises ImageLoadError."""
    image = load_image(path)
    if for_augmentation:
        return augmentation_source(image.pixels, pre.image_size)
    return preprocess(image, pre)


def _spawn_pool(processes: int) -> ProcessPoolExecutor:
    # spawn, not fork: the trainer has torch's OpenMP threads running, which a forked child must not inherit
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=worker_start)


class DecodePool:
    """`decode_for_training` in `processes` worker processes; `decode` may be called from many threads at once."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a decode pool needs at least one process")
        self.processes = processes
        self.crashes = 0  # workers lost while decoding (each restarts the pool)
        self._lock = threading.Lock()
        self._pool = _spawn_pool(processes)

    def decode(self, path: str | Path, pre: PreprocessConfig, for_augmentation: bool) -> np.ndarray:
        """The decoded image (ImageLoadError for an unreadable file, as `decode_for_training` raises it)."""
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(decode_for_training, str(path), pre, for_augmentation).result()
        except BrokenProcessPool:
            self._restart(pool)
        # A worker died. Every image in flight fails with it, not only the one that killed it: decode this one
        # alone in a process of its own, so only a file that crashes the decoder by itself is skipped.
        with _spawn_pool(1) as alone:
            try:
                return alone.submit(decode_for_training, str(path), pre, for_augmentation).result()
            except BrokenProcessPool as exc:
                raise ImageLoadError(
                    f"{Path(path).name}: the decoding process ended while reading this file (a decoder crash, or "
                    "the system ran out of memory); the image is skipped."
                ) from exc

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:  # the first thread to see the break replaces the pool; the others reuse it
                self.crashes += 1
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = _spawn_pool(self.processes)

    def close(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["DECODE_IN", "DecodePool", "decode_for_training"]
