"""Training and validation images decoded once per run, held in memory up to a budget.

A training run reads every image once per epoch and the validation images at every evaluation. Decoding is
cheap for small JPEGs (about 1 ms for a 224 px Kermany image) but not for the full-size DICOMs researchers train
on: 80 ms for an uncompressed 1955 x 1841 CR, 740 ms for the same image in lossless JPEG 2000 on this CPU, against
about 17 ms of compute per image in a masked MedFLIP step. Cached, only the first epoch pays for decoding.

What is cached is the array the loader would compute anyway, so a cached batch equals an uncached one bit for
bit and a resumed run (which starts with an empty cache) sees the pixels the killed run saw:
- without augmentation, the model input (preprocessing done);
- with augmentation, `medflip_core.imaging.augment.augmentation_source` (decoded, reduced to at most twice the model
  input's side), on which each step draws its own augmentation.
Entries are never evicted: once the budget is used, later images are decoded every time, as without a cache.
So pre-training gives the validation images their own share first (`split_budget`), and the run's `done`
event reports each cache's figures. Each process (each torchrun rank) holds its own cache.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

import numpy as np


class DecodedImageCache:
    """Read-only arrays by key (e.g. ("train", record index)), up to `max_mb` megabytes; thread-safe."""

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max(max_mb, 0.0) * 2**20)
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0
        self.refused = 0  # arrays not stored because the budget was used up
        self._items: dict[Hashable, np.ndarray] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            arr = self._items.get(key)
            if arr is None:
                self.misses += 1
            else:
                self.hits += 1
            return arr

    def put(self, key: Hashable, arr: np.ndarray) -> np.ndarray:
        """Store a copy-free, read-only view of `arr` if it fits; returns it (so callers use what is stored)."""
        arr = np.asarray(arr)
        with self._lock:
            if key in self._items:
                return self._items[key]
            if self.used_bytes + arr.nbytes > self.max_bytes:
                self.refused += 1
                return arr
            stored = arr.view()
            stored.flags.writeable = False  # shared between steps: nobody may change it in place
            self._items[key] = stored
            self.used_bytes += arr.nbytes
            return stored

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict:
        return {"images": len(self._items), "mb": round(self.used_bytes / 2**20, 1),
                "max_mb": round(self.max_bytes / 2**20, 1), "hits": self.hits, "misses": self.misses,
                "refused": self.refused}


def split_budget(max_mb: float, n_val: int, image_size: int) -> tuple[float, float]:
    """(training MB, validation MB) of one budget. The validation images (model inputs, float32) get what they
    need first, at most the whole budget: one cache with no eviction would fill with training images and leave
    every later evaluation decoding its images again."""
    val_mb = min(max(max_mb, 0.0), n_val * image_size * image_size * 4 / 2**20)
    return max(max_mb, 0.0) - val_mb, val_mb


__all__ = ["DecodedImageCache", "split_budget"]
