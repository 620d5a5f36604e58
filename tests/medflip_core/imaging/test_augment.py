"""Train-only augmentation: deterministic per seed, bounded, shape and range kept, on a real radiograph."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.imaging import load_image
from medflip_core.imaging.augment import AugmentConfig, augment_radiograph, augment_rng
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess


@pytest.fixture(scope="module")
def radiograph(shared_data):
    return load_image(sorted((shared_data / "cxr-nih-adult" / "images").iterdir())[0])


def test_deterministic_for_a_seed_and_different_across_keys(radiograph):
    a = augment_radiograph(radiograph.pixels, augment_rng(0, 5, 17))
    b = augment_radiograph(radiograph.pixels, augment_rng(0, 5, 17))
    c = augment_radiograph(radiograph.pixels, augment_rng(0, 5, 18))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == radiograph.pixels.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_bounded_changes_stay_close_to_the_original(radiograph):
    x = radiograph.pixels
    outs = [augment_radiograph(x, augment_rng(1, i)) for i in range(8)]
    for out in outs:
        assert np.corrcoef(out.ravel(), x.ravel())[0, 1] > 0.5  # still the same chest, not noise
    assert np.std([o.mean() for o in outs]) > 0.005  # but intensities do vary
    # no augmentation at all: identity crop, no rotation, no intensity change gives back the image
    none = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), max_rotation_deg=0.0, brightness=0.0,
                         contrast=0.0, gamma=(1.0, 1.0))
    np.testing.assert_allclose(augment_radiograph(x, augment_rng(0), none), x, atol=1e-5)


def test_applied_before_the_one_preprocessing_path(radiograph):
    pre = PreprocessConfig()
    out = preprocess(augment_radiograph(radiograph.pixels, augment_rng(2)), pre)
    assert out.shape == preprocess(radiograph, pre).shape
    with pytest.raises(ValueError, match="2-D"):
        augment_radiograph(np.zeros((2, 8, 8)), augment_rng(0))


def test_config_round_trip():
    cfg = AugmentConfig(max_rotation_deg=3.0, gamma=(0.9, 1.1))
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
