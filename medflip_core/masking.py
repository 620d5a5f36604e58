"""The one patch-masking module: used by the trainer, the mask view and the tests.

Three strategies, all pure numpy so the GUI shows exactly what training samples without importing torch
(the torch image tower gathers tokens with the kept indices):

- `random` (MedFLIP/FLIP): MAE-style per-sample masking: uniform noise per patch, argsort, keep the
  first round(L * (1 - ratio)) patches.
- `integrity` (our reading of MLIP): the patches carrying the least information (lowest standard
  deviation of the model-input pixels: padding, collimation, flat background) are dropped first.
- `attention` (our reading of XLIP's AttMIM): the patches whose tokens are most similar to the batch's
  text are dropped first, so the model must infer the findings from their context.

The guided strategies share one rule: of the L - K patches to drop, round(guided_share * (L - K)) are the
ones ranked first by the strategy's drop priority (ties broken by the noise), the others are drawn
uniformly at random from the rest, so every step still sees a different view.
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


MAX_MASK_RATIO = 0.9  # the largest share of patches a training step drops (trainer, Training form, Mask tab)


def mask_ratio_problem(ratio: float, above_zero: bool = False) -> str | None:
    """What is wrong with a mask ratio a person gave, as the end of a sentence ("must be ..."), or None.
    `above_zero`: 0 is refused too (a reconstruction needs dropped patches)."""
    low = "above 0" if above_zero else "at least 0"
    inside = (ratio > 0.0 if above_zero else ratio >= 0.0) and ratio <= MAX_MASK_RATIO  # False for NaN
    if inside:
        return None
    return (f"must be {low} and at most {MAX_MASK_RATIO:g} (the share of each image's patches dropped), "
            f"not {ratio:g}")


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


MASK_STRATEGIES = ("random", "integrity", "attention")
DEFAULT_GUIDED_SHARE = 0.5


def check_strategy(strategy: str, guided_share: float = DEFAULT_GUIDED_SHARE) -> None:
    """A clear error for an unknown strategy or a guided share outside [0, 1]."""
    if strategy not in MASK_STRATEGIES:
        raise ValueError(f"unknown mask strategy {strategy!r}: choose one of {', '.join(MASK_STRATEGIES)}")
    if not 0.0 <= guided_share <= 1.0:
        raise ValueError(f"the guided share of the masked patches must be in [0, 1], got {guided_share}")


def integrity_scores(pixels: np.ndarray, patch_size: int) -> np.ndarray:
    """(B, L) information of each patch: standard deviation of its model-input pixels (all channels).

    pixels: (B, C, S, S) preprocessed model input; patches in row-major order as the ViT numbers them.
    Flat patches (the letterbox padding, collimation, uniform background) score 0.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 4:
        raise ValueError(f"expected (batch, channels, height, width) pixels, got shape {pixels.shape}")
    b, c, h, w = pixels.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"an image of {h}x{w} px is not a whole number of {patch_size}-pixel patches")
    rows, cols = h // patch_size, w // patch_size
    blocks = pixels.reshape(b, c, rows, patch_size, cols, patch_size).transpose(0, 2, 4, 1, 3, 5)
    return blocks.reshape(b, rows * cols, -1).std(axis=-1)


def patch_text_scores(patch_tokens: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """(B, L) highest cosine similarity of each patch token with any of the texts.

    patch_tokens: (B, L, D) projected patch tokens; text_embeddings: (T, D), T >= 1.
    """
    tokens = np.asarray(patch_tokens, dtype=np.float32)
    texts = np.asarray(text_embeddings, dtype=np.float32)
    if tokens.ndim != 3 or texts.ndim != 2 or texts.shape[0] == 0 or texts.shape[1] != tokens.shape[2]:
        raise ValueError(f"patch tokens (B, L, D) and at least one text embedding (T, D) of the same D are "
                         f"needed, got {tokens.shape} and {texts.shape}")
    tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=-1, keepdims=True), 1e-12)
    texts = texts / np.maximum(np.linalg.norm(texts, axis=-1, keepdims=True), 1e-12)
    return (tokens @ texts.T).max(axis=-1)


def drop_priority(strategy: str, scores: np.ndarray) -> np.ndarray:
    """Higher = dropped first: low information for `integrity`, high text similarity for `attention`."""
    return -scores if strategy == "integrity" else scores


def sample_guided_mask(
    priority: np.ndarray, ratio: float, rng: np.random.Generator | int | None,
    guided_share: float = DEFAULT_GUIDED_SHARE,
) -> PatchMask:
    """Drop the highest-priority share of the masked patches, the rest of the drops at random.

    priority: (B, L); the noise is drawn exactly as `sample_patch_mask` draws it.
    """
    priority = np.asarray(priority, dtype=np.float64)
    if priority.ndim != 2:
        raise ValueError(f"expected (batch, patches) scores, got shape {priority.shape}")
    if not np.all(np.isfinite(priority)):
        raise ValueError("the mask scores contain NaN or infinite values")
    check_strategy("random", guided_share)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    batch, num_patches = priority.shape
    keep_n = num_kept_patches(num_patches, ratio)
    guided_n = int(round(guided_share * (num_patches - keep_n)))
    noise = gen.random((batch, num_patches))
    # rank by priority (descending), ties by noise; the first guided_n of them are dropped for sure
    by_priority = np.lexsort((noise, -priority), axis=-1)
    forced = np.zeros((batch, num_patches), dtype=bool)
    np.put_along_axis(forced, by_priority[:, :guided_n], True, axis=1)
    # the others are ordered by noise (as in random masking); forced drops go to the very end
    order_key = np.where(forced, 2.0 + noise, noise)
    shuffle = np.argsort(order_key, axis=1, kind="stable").astype(np.int64)
    restore = np.argsort(shuffle, axis=1, kind="stable").astype(np.int64)
    keep = np.sort(shuffle[:, :keep_n], axis=1)
    return PatchMask(keep=keep, shuffle=shuffle, restore=restore)


def make_patch_mask(
    strategy: str, batch: int, num_patches: int, ratio: float, rng: np.random.Generator | int | None,
    scores: np.ndarray | None = None, guided_share: float = DEFAULT_GUIDED_SHARE,
) -> PatchMask:
    """The mask of a strategy: `scores` (B, L) are required by the guided strategies and ignored by random."""
    check_strategy(strategy, guided_share)
    if strategy == "random":
        return sample_patch_mask(batch, num_patches, ratio, rng)
    if scores is None:
        raise ValueError(f"the {strategy} mask strategy needs a score per patch")
    scores = np.asarray(scores)
    if scores.shape != (batch, num_patches):
        raise ValueError(f"{strategy} scores must have shape ({batch}, {num_patches}), got {scores.shape}")
    return sample_guided_mask(drop_priority(strategy, scores), ratio, rng, guided_share)


def patch_grid(image_size: int, patch_size: int) -> tuple[int, int]:
    """Rows and columns of the patch grid of a square model input."""
    if image_size % patch_size:
        raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
    side = image_size // patch_size
    return side, side
