"""Display levels (medflip_core.imaging.display): whole-block means of a real film, edges included, by bands."""

from __future__ import annotations

import numpy as np

from medflip_core.imaging import load_image
from medflip_core.imaging.display import display_factor, reduce_blocks


def block_means(image: np.ndarray, factor: int) -> np.ndarray:
    """The reference: padded with NaN to whole blocks, each block's mean of the pixels it has."""
    rows, columns = image.shape
    padded = np.full((-(-rows // factor) * factor, -(-columns // factor) * factor), np.nan)
    padded[:rows, :columns] = image
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return np.nanmean(blocks, axis=(1, 3))


def test_blocks_of_a_real_film_average_its_values_at_the_edges_too(shared_data):
    raw = load_image(shared_data / "dicom" / "RG1_UNCR.dcm").raw  # 1955 rows x 1841 columns: no factor divides both
    assert display_factor(raw.shape, 2048) == 1 and display_factor(raw.shape, 1000) == 2
    assert reduce_blocks(raw, 1) is raw
    for factor in (2, 3, 7):
        reduced = reduce_blocks(raw, factor)
        assert reduced.dtype == np.float32 and reduced.shape == (-(-1955 // factor), -(-1841 // factor))
        np.testing.assert_allclose(reduced, block_means(raw, factor), rtol=1e-6, atol=1e-3)
    crop = raw[101:1700:, 33:1201]  # a view, as a viewer's zoomed-in part is
    np.testing.assert_allclose(reduce_blocks(crop, 3), block_means(crop, 3), rtol=1e-6, atol=1e-3)
