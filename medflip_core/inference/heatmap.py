"""Colouring a patch-text similarity map for display over the original image (no Qt).

The map is computed on the square, letterboxed model input; only the part that covers the image is
coloured, so the padding around a non-square image stays clear. Colours are scaled to the range of the
cosines over the image's own patches, and that range travels with the overlay so the colour scale can
state it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medflip_core.imaging.preprocess import letterbox_geometry

# how to read a patch-text map, measured (`medflip bench pointing`, docs/results.md): for the bundled model the
# hottest patch fell inside a reader's tuberculosis box on 38 % of 799 TBX11K films with "Consolidation" and on 1 %
# with "Pneumonia" (chance 10 %): the map follows the words, not the lesion
SIMILARITY_CAVEAT = ("Each patch's similarity to the label's words: where the patches resemble the words, not a "
                     "localisation of the finding. Measured for the bundled model on 799 tuberculosis films with "
                     "readers' boxes: the hottest patch lay in a box on 38 % of films for “Consolidation” but on 1 % "
                     "for “Pneumonia” (10 % by chance), so a map can light up away from the lesion. Research use only.")
ACTIVATION_CAVEAT = ("Each patch's contribution to the class's score through the classifier head: where the score came "
                     "from, not a localisation of the finding (not checked against drawn findings). Research use "
                     "only.")


@dataclass(frozen=True)
class HeatOverlay:
    rgba: np.ndarray  # (h, w, 4) uint8, covering exactly the image (not the padding)
    low: float  # cosine at the blue end of the colour scale
    high: float  # cosine at the red end
    values: np.ndarray | None = None  # (h, w) float32, the value each overlay pixel is coloured by (NaN: clear)


def colour_map(t: np.ndarray) -> np.ndarray:
    """Blue (0) through green to red (1): (..., 3) uint8."""
    t = np.clip(np.asarray(t, dtype=np.float32), 0.0, 1.0)
    rgb = np.empty((*t.shape, 3), dtype=np.uint8)
    rgb[..., 0] = (255 * t).astype(np.uint8)
    rgb[..., 1] = (255 * (1 - np.abs(2 * t - 1)) * 0.8).astype(np.uint8)
    rgb[..., 2] = (255 * (1 - t)).astype(np.uint8)
    return rgb


def heat_overlay(heat: np.ndarray, image_shape: tuple[int, int], image_size: int, opacity: float) -> HeatOverlay:
    """The (rows, cols) patch map of a square `image_size` input, cut to the image of `image_shape`."""
    rows, cols = heat.shape
    full = np.repeat(np.repeat(heat.astype(np.float32), image_size // rows, axis=0), image_size // cols, axis=1)
    _, new_h, new_w, top, left = letterbox_geometry(*image_shape, image_size)
    inside = full[top : top + new_h, left : left + new_w]
    finite = np.isfinite(inside)
    low, high = (float(np.min(inside[finite])), float(np.max(inside[finite]))) if finite.any() else (0.0, 1.0)
    t = np.where(finite, (inside - low) / max(high - low, 1e-6), 0.0)
    rgba = np.zeros((*inside.shape, 4), dtype=np.uint8)
    rgba[..., :3] = colour_map(t)
    rgba[..., 3] = np.where(finite, int(round(255 * opacity)), 0).astype(np.uint8)
    return HeatOverlay(rgba=rgba, low=low, high=high, values=inside)
