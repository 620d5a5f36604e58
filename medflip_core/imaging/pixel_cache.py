"""Full-resolution pixels of opened images, kept in a cache bounded in megabytes.

An opened image keeps its metadata and a thumbnail; its full pixels (display-ready and modality values, about
28 MB for a 1955x1841 CR film in float32) are decoded on demand through the same reader that opened it and kept
here, least recently used first out, so a study of any size costs at most `limit_mb` of pixels. The way
Slicer, Weasis and OHIF keep a study open: headers and thumbnails for all images, pixels for a few.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

DEFAULT_LIMIT_MB = 1024.0  # about 35 full-size CR films; the app's setting `pixel_cache_mb` changes it
MIN_LIMIT_MB = 64.0  # below this, paging back and forth between two films would decode on every step

Arrays = tuple[np.ndarray, np.ndarray]  # (pixels, raw)


@dataclass
class CacheStats:
    images: int
    megabytes: float
    limit_mb: float
    hits: int
    misses: int
    evictions: int
    refused: int  # entries larger than the whole limit (used once, never kept)


def _nbytes(arrays: Arrays) -> int:
    return int(sum(a.nbytes for a in arrays))


class PixelCache:
    """A thread-safe LRU of (pixels, raw) per image key, at most `limit_mb` megabytes in total."""

    def __init__(self, limit_mb: float = DEFAULT_LIMIT_MB) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Arrays] = OrderedDict()
        self._bytes = 0
        self._limit = 0
        self.hits = self.misses = self.evictions = self.refused = 0
        self.set_limit_mb(limit_mb)

    @property
    def limit_mb(self) -> float:
        return self._limit / 2**20

    @property
    def nbytes(self) -> int:
        return self._bytes

    def set_limit_mb(self, limit_mb: float) -> None:
        """A new bound (at least MIN_LIMIT_MB); entries beyond it leave at once, oldest first."""
        with self._lock:
            self._limit = int(max(float(limit_mb), MIN_LIMIT_MB) * 2**20)
            self._evict()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Arrays | None:
        with self._lock:
            arrays = self._entries.get(key)
            if arrays is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return arrays

    def put(self, key: Hashable, arrays: Arrays) -> None:
        size = _nbytes(arrays)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _nbytes(old)
            if size > self._limit:
                self.refused += 1
                return
            self._entries[key] = arrays
            self._bytes += size
            self._evict()

    def fetch(self, key: Hashable, decode: Callable[[], Arrays], keep: bool = True) -> Arrays:
        """The cached arrays, or `decode()`'s (kept when `keep`; decoding runs outside the lock)."""
        arrays = self.get(key)
        if arrays is not None:
            return arrays
        with self._lock:
            self.misses += 1
        arrays = decode()
        if keep:
            self.put(key, arrays)
        return arrays

    def discard(self, key: Hashable) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _nbytes(old)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._entries), self._bytes / 2**20, self.limit_mb, self.hits, self.misses,
                              self.evictions, self.refused)

    def _evict(self) -> None:  # with the lock held
        while self._bytes > self._limit and self._entries:
            _, old = self._entries.popitem(last=False)
            self._bytes -= _nbytes(old)
            self.evictions += 1


_DEFAULT = PixelCache()


def default_cache() -> PixelCache:
    """The process's cache: every opened image that was given no cache of its own decodes into it."""
    return _DEFAULT
