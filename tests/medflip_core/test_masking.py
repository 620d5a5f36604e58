from __future__ import annotations

import numpy as np
import pytest

from medflip_core.masking import num_kept_patches, patch_grid, sample_patch_mask


@pytest.mark.parametrize("num_patches", [196, 49, 197, 10])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_kept_count_is_rounded_share(num_patches, ratio):
    mask = sample_patch_mask(4, num_patches, ratio, 0)
    assert mask.num_kept == max(1, round(num_patches * (1 - ratio)))
    assert mask.keep.shape == (4, mask.num_kept)


def test_kept_patches_are_unique_sorted_and_in_range():
    mask = sample_patch_mask(8, 196, 0.75, 123)
    for row in mask.keep:
        assert len(set(row.tolist())) == len(row)
        assert np.all(np.diff(row) > 0)
        assert row.min() >= 0 and row.max() < 196


def test_restore_inverts_shuffle():
    mask = sample_patch_mask(5, 196, 0.5, 7)
    restored = np.take_along_axis(mask.shuffle, mask.restore, axis=1)
    assert np.array_equal(restored, np.tile(np.arange(196), (5, 1)))
    # the kept set is the first K of the shuffle
    assert np.array_equal(np.sort(mask.shuffle[:, : mask.num_kept], axis=1), mask.keep)


def test_same_seed_same_mask_and_samples_differ():
    a = sample_patch_mask(4, 196, 0.75, 42)
    b = sample_patch_mask(4, 196, 0.75, 42)
    c = sample_patch_mask(4, 196, 0.75, 43)
    assert np.array_equal(a.keep, b.keep)
    assert not np.array_equal(a.keep, c.keep)
    assert not np.array_equal(a.keep[0], a.keep[1])  # per-sample masks


def test_boolean_view_matches_indices():
    mask = sample_patch_mask(2, 49, 0.6, 1)
    kept = mask.kept_boolean()
    assert kept.sum(axis=1).tolist() == [mask.num_kept] * 2
    assert np.array_equal(np.flatnonzero(kept[1]), mask.keep[1])


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_bad_ratio_rejected(ratio):
    with pytest.raises(ValueError):
        num_kept_patches(196, ratio)


def test_patch_grid():
    assert patch_grid(224, 16) == (14, 14)
    with pytest.raises(ValueError):
        patch_grid(225, 16)
