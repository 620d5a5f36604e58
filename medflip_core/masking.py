"""The one patch-masking algorithm: used by the trainer, the mask view and the tests.

MAE-style per-sample random masking: draw uniform noise per patch, argsort it, keep the
first round(L * (1 - ratio)) patches. Pure numpy so the GUI can show exactly what training
samples without importing torch; the torch image tower gathers tokens with these indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatchMask:
    """Kept patch indices (sorted within each row) and the permutation that restores patch order.

    keep: int64 (B, K) indices into the L patches, in ascending order.
    shuffle: int64 (B, L) patch indices ordered by noise (kept ones first, as drawn).
    restore: int64 (B, L) inverse of `shuffle`: shuffle[b, restore[b, l]] == l.
    """

    keep: np.ndarray
    shuffle: np.ndarray
    restore: np.ndarray

    @property
    def num_patches(self) -> int:
        return int(self.shuffle.shape[1])

    @property
    def num_kept(self) -> int:
        return int(self.keep.shape[1])

    def kept_boolean(self) -> np.ndarray:
        """(B, L) True where a patch is kept."""
        out = np.zeros(self.shuffle.shape, dtype=bool)
        np.put_along_axis(out, self.keep, True, axis=1)
        return out


def num_kept_patches(num_patches: int, ratio: float) -> int:
    """How many of `num_patches` survive a mask ratio; at least one always does."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return max(1, int(round(num_patches * (1.0 - ratio))))


def sample_patch_mask(
    batch: int, num_patches: int, ratio: float, rng: np.random.Generator | int | None
) -> PatchMask:
    """Draw one independent random mask per sample.

    `rng` may be a seed (int): the same seed always gives the same masks.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    keep_n = num_kept_patches(num_patches, ratio)
    noise = gen.random((batch, num_patches))
    shuffle = np.argsort(noise, axis=1, kind="stable").astype(np.int64)
    restore = np.argsort(shuffle, axis=1, kind="stable").astype(np.int64)
    keep = np.sort(shuffle[:, :keep_n], axis=1)
    return PatchMask(keep=keep, shuffle=shuffle, restore=restore)


def patch_grid(image_size: int, patch_size: int) -> tuple[int, int]:
    """Rows and columns of the patch grid of a square model input."""
    if image_size % patch_size:
        raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
    side = image_size // patch_size
    return side, side
