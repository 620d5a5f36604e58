"""Display levels: an image reduced by whole blocks of pixels to what a screen can show, so that a viewer of a huge
image (an 8000x8000 scan) keeps screen-sized data, not full-resolution copies, and redraws a window/level change
on that. Zoomed in past it, a viewer draws the part in view from the full-resolution values (`reduce_blocks` of a
crop, at the step the zoom needs)."""

from __future__ import annotations

import math

import numpy as np

ROWS_AT_ONCE = 256  # output rows made per pass: the temporaries stay a band of the image, never a full copy


def display_factor(shape: tuple[int, ...], max_side: int) -> int:
    """The smallest whole number of image pixels per display pixel (each way) that brings the image's longest
    side to at most `max_side` display pixels; 1 for an image that fits."""
    return max(1, math.ceil(max(shape[:2]) / max(1, int(max_side))))


def reduce_blocks(image: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each `factor` x `factor` block of a 2-D image, float32 (the blocks at the right and bottom edges
    average the pixels they have); `image` itself, not a copy, when `factor` is 1. Works through bands of rows, so
    a view of a huge array (a crop) is reduced without copying it whole."""
    if factor <= 1:
        return image
    rows, columns = image.shape
    out = np.empty((-(-rows // factor), -(-columns // factor)), dtype=np.float32)
    column_starts = np.arange(0, columns, factor)
    column_counts = np.diff(np.append(column_starts, columns))
    band = ROWS_AT_ONCE * factor
    for top in range(0, rows, band):
        part = image[top:top + band]
        row_starts = np.arange(0, part.shape[0], factor)
        row_counts = np.diff(np.append(row_starts, part.shape[0]))
        # float32 sums: a block is a few dozen pixels at most (100 megapixels on a 2048-px screen: 5 x 5), whole
        # 16-bit values add up exactly far beyond that
        sums = np.add.reduceat(np.add.reduceat(part, row_starts, axis=0, dtype=np.float32), column_starts, axis=1)
        first = top // factor
        out[first:first + len(row_starts)] = sums / np.outer(row_counts, column_counts)
    return out
