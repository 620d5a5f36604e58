from __future__ import annotations

import re

import numpy as np
import pytest

from medflip_core.masking import (
    integrity_scores,
    make_patch_mask,
    num_kept_patches,
    patch_grid,
    patch_text_scores,
    sample_patch_mask,
)


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


# --- strategies ---------------------------------------------------------------------------------------------

STRATEGIES = ("random", "integrity", "attention")


def _scores(batch: int, num_patches: int, seed: int = 99) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, num_patches))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 0.9])
@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_every_strategy_keeps_the_requested_number(strategy, ratio, share):
    mask = make_patch_mask(strategy, 3, 196, ratio, 5, _scores(3, 196), share)
    assert mask.keep.shape == (3, num_kept_patches(196, ratio))
    for row, shuffle, restore in zip(mask.keep, mask.shuffle, mask.restore, strict=True):
        assert len(set(row.tolist())) == len(row) and np.all(np.diff(row) > 0)
        assert np.array_equal(shuffle[restore], np.arange(196))
        assert np.array_equal(np.sort(shuffle[: mask.num_kept]), row)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_same_seed_same_indices(strategy):
    scores = _scores(4, 196)
    a = make_patch_mask(strategy, 4, 196, 0.75, 42, scores)
    b = make_patch_mask(strategy, 4, 196, 0.75, np.random.default_rng(42), scores.copy())
    c = make_patch_mask(strategy, 4, 196, 0.75, 43, scores)
    assert np.array_equal(a.keep, b.keep) and np.array_equal(a.shuffle, b.shuffle)
    assert not np.array_equal(a.keep, c.keep)  # the unguided half of the drops still varies


def test_random_strategy_is_the_original_algorithm_bit_for_bit():
    # the pre-strategy code, written out: the resume bit-exactness of earlier runs depends on it
    noise = np.random.default_rng(7).random((4, 196))
    shuffle = np.argsort(noise, axis=1, kind="stable")
    expected = np.sort(shuffle[:, :49], axis=1)
    assert np.array_equal(make_patch_mask("random", 4, 196, 0.75, 7).keep, expected)
    assert np.array_equal(make_patch_mask("random", 4, 196, 0.75, 7, _scores(4, 196), 1.0).keep, expected)


@pytest.mark.parametrize("strategy", ["integrity", "attention"])
def test_guided_share_zero_is_random_masking(strategy):
    scores = _scores(2, 196)
    guided = make_patch_mask(strategy, 2, 196, 0.75, 11, scores, guided_share=0.0)
    assert np.array_equal(guided.keep, sample_patch_mask(2, 196, 0.75, 11).keep)


def test_guided_rule_drops_the_top_priority_share_and_draws_the_rest():
    scores = _scores(6, 196)
    keep_n = num_kept_patches(196, 0.75)
    guided_n = round(0.5 * (196 - keep_n))
    for strategy, first_dropped in (("attention", np.argsort(-scores, axis=1)),
                                    ("integrity", np.argsort(scores, axis=1))):
        mask = make_patch_mask(strategy, 6, 196, 0.75, 3, scores, 0.5)
        kept = mask.kept_boolean()
        for row in range(6):
            assert not kept[row, first_dropped[row, :guided_n]].any()
            # the rest of the drops is not simply the next ranks: some higher-priority patches survive
            assert kept[row, first_dropped[row, guided_n : guided_n + 60]].any()
        full = make_patch_mask(strategy, 6, 196, 0.75, 3, scores, 1.0)
        for row in range(6):
            assert np.array_equal(full.keep[row], np.sort(first_dropped[row, 196 - keep_n :]))


def test_ties_are_broken_by_the_seed():
    flat = np.zeros((1, 196))
    a = make_patch_mask("integrity", 1, 196, 0.75, 1, flat, 1.0)
    b = make_patch_mask("integrity", 1, 196, 0.75, 2, flat, 1.0)
    assert a.num_kept == 49 and not np.array_equal(a.keep, b.keep)


def test_integrity_scores_are_patch_standard_deviations():
    pixels = np.random.default_rng(0).normal(size=(2, 1, 32, 48)).astype(np.float32)
    pixels[1, 0, :16, :16] = 0.3  # a flat patch
    scores = integrity_scores(pixels, 16)
    assert scores.shape == (2, 6)
    for b in range(2):
        for index in range(6):
            r, c = divmod(index, 3)
            np.testing.assert_allclose(scores[b, index], pixels[b, 0, r * 16:(r + 1) * 16, c * 16:(c + 1) * 16].std(),
                                       rtol=1e-5)
    assert scores[1, 0] == pytest.approx(0.0, abs=1e-7)


def test_integrity_drops_the_letterbox_padding_of_a_real_image_first(shared_data):
    from medflip_core.imaging import load_image
    from medflip_core.imaging.preprocess import PreprocessConfig, preprocess

    pre = PreprocessConfig()
    rg = load_image(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm")  # 169 x 211: letterboxed
    pixels = preprocess(rg, pre)[None]
    scores = integrity_scores(pixels, 16)[0]
    flat = np.flatnonzero(scores < 1e-6)
    assert {*range(14), *range(182, 196)} <= set(flat.tolist())  # the top and bottom rows are padding
    assert len(flat) <= round(0.5 * (196 - 49))
    for seed in range(5):
        mask = make_patch_mask("integrity", 1, 196, 0.75, seed, scores[None], 0.5)
        assert not np.isin(flat, mask.keep[0]).any()
    # it keeps informative patches: the mean score of what is kept beats random masking's, over seeds
    guided = np.mean([scores[make_patch_mask("integrity", 1, 196, 0.75, s, scores[None]).keep[0]].mean()
                      for s in range(20)])
    rand = np.mean([scores[sample_patch_mask(1, 196, 0.75, s).keep[0]].mean() for s in range(20)])
    assert guided > rand * 1.1


def test_patch_text_scores_are_the_best_cosine_over_texts():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(2, 5, 8))
    texts = rng.normal(size=(3, 8))
    scores = patch_text_scores(tokens, texts)
    for b in range(2):
        for p in range(5):
            cos = [tokens[b, p] @ t / np.linalg.norm(tokens[b, p]) / np.linalg.norm(t) for t in texts]
            assert scores[b, p] == pytest.approx(max(cos), abs=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_patch_mask("checkerboard", 1, 196, 0.75, 0), "unknown mask strategy 'checkerboard'"),
        (lambda: make_patch_mask("attention", 1, 196, 0.75, 0), "needs a score per patch"),
        (lambda: make_patch_mask("integrity", 2, 196, 0.75, 0, np.zeros((1, 196))), "must have shape (2, 196)"),
        (lambda: make_patch_mask("attention", 1, 4, 0.5, 0, np.array([[0.0, np.nan, 1, 2]])), "NaN"),
        (lambda: make_patch_mask("integrity", 1, 196, 0.75, 0, np.zeros((1, 196)), 1.5), "guided share"),
        (lambda: make_patch_mask("integrity", 1, 196, 1.0, 0, np.zeros((1, 196))), "mask ratio"),
        (lambda: integrity_scores(np.zeros((1, 1, 20, 20)), 16), "whole number of 16-pixel patches"),
        (lambda: patch_text_scores(np.zeros((1, 4, 8)), np.zeros((0, 8))), "at least one text"),
    ],
)
def test_bad_values_give_a_clear_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
