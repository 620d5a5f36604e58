"""Decoded images are cached across epochs and evaluations without changing a single pixel a step sees."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.data.image_folder import index_image_folder
from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.imaging.augment import WORKING_SIDE_FACTOR, AugmentConfig, augmentation_source
from medflip_core.imaging.preprocess import PreprocessConfig
from trainer.batches import ImageBatches
from trainer.config import TrainConfig
from trainer.image_cache import DecodedImageCache, split_budget


@pytest.fixture(scope="module")
def kermany(shared_data):
    return index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")[:64]


@pytest.mark.parametrize("augment", [None, AugmentConfig()], ids=["plain", "augmented"])
def test_cached_batches_equal_uncached_ones_over_two_epochs(kermany, augment):
    pre = PreprocessConfig(image_size=64)
    cache = DecodedImageCache(64)
    plain = ImageBatches(kermany, pre, batch_size=8, seed=2, augment=augment)
    cached = ImageBatches(kermany, pre, batch_size=8, seed=2, augment=augment, cache=cache)
    assert cached.steps_per_epoch == 8
    for step in range(10):  # the second epoch is served from the cache
        a, b = plain.batch(step), cached.batch(step)
        assert a.used == b.used and a.epoch == b.epoch
        assert np.array_equal(a.pixels.numpy(), b.pixels.numpy())
    assert len(cache) == 64 and cache.misses == 64 and cache.hits == 16 and cache.refused == 0
    if augment is not None:  # each step draws its own augmentation from the cached source image
        first, again = cached.load(3, step=0), cached.load(3, step=1)
        assert not np.array_equal(first, again)


def test_a_full_cache_keeps_what_fits_and_every_image_is_still_served(kermany):
    pre = PreprocessConfig(image_size=64)
    one_image_mb = 64 * 64 * 4 / 2**20
    cache = DecodedImageCache(3.5 * one_image_mb)
    plain = ImageBatches(kermany, pre, batch_size=8, seed=4)
    cached = ImageBatches(kermany, pre, batch_size=8, seed=4, cache=cache)
    for step in (0, 8):
        assert np.array_equal(plain.batch(step).pixels.numpy(), cached.batch(step).pixels.numpy())
    assert len(cache) == 3 and cache.refused > 0
    assert cache.stats()["images"] == 3 and cache.stats()["mb"] <= cache.stats()["max_mb"]


def test_cached_arrays_are_read_only_and_loaders_sharing_a_cache_keep_their_own_images(kermany):
    pre = PreprocessConfig(image_size=64)
    cache = DecodedImageCache(64)
    train = ImageBatches(kermany[:16], pre, batch_size=4, seed=0, cache=cache)
    val = ImageBatches(kermany[16:32], pre, batch_size=1, seed=0, cache=cache, cache_name="val")
    fresh_val = ImageBatches(kermany[16:32], pre, batch_size=1, seed=0)
    train.batch(0)
    for i in range(4):  # the same record indices as the training loader's, other images
        assert np.array_equal(val.load(i), fresh_val.load(i))
        assert not np.array_equal(val.load(i), train.load(i))
    stored = val.load(0)
    assert not stored.flags.writeable
    with pytest.raises(ValueError):
        stored[0, 0, 0] = 1.0


def test_augmentation_source_reduces_a_full_size_dicom_and_leaves_small_images_alone(shared_data, kermany):
    dicom = load_image(shared_data / "dicom" / "RG1_UNCR.dcm")  # a 1955 x 1841 CR chest
    rows, cols = dicom.pixels.shape
    reduced = augmentation_source(dicom.pixels, 224)
    assert max(reduced.shape) == WORKING_SIDE_FACTOR * 224
    assert reduced.shape[0] / reduced.shape[1] == pytest.approx(rows / cols, rel=0.01)
    # area averaging: the mean grey level is kept, nothing leaves the display range
    assert float(reduced.mean()) == pytest.approx(float(dicom.pixels.mean()), abs=2e-3)
    assert float(reduced.min()) >= 0.0 and float(reduced.max()) <= 1.0
    small = load_image(kermany[0].path).pixels  # 224 px: augmented exactly as before
    assert np.array_equal(augmentation_source(small, 224), small)


def test_a_dicom_folder_is_decoded_once_for_two_epochs(shared_data, tmp_path):
    names = ["RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm", "nih_dx_secondary_capture.dcm",
             "rsna_cr_chest_fake_monochrome1.dcm"]
    for k, name in enumerate(names):
        folder = tmp_path / ("NORMAL" if k % 2 else "PNEUMONIA")
        folder.mkdir(exist_ok=True)
        (folder / name).symlink_to(shared_data / "dicom" / name)
    records = index_image_folder(tmp_path)
    pre = PreprocessConfig(image_size=64)
    cache = DecodedImageCache(64)
    plain = ImageBatches(records, pre, batch_size=2, seed=1, augment=AugmentConfig())
    cached = ImageBatches(records, pre, batch_size=2, seed=1, augment=AugmentConfig(), cache=cache)
    for step in range(4):
        assert np.array_equal(plain.batch(step).pixels.numpy(), cached.batch(step).pixels.numpy())
    assert cache.misses == 4 and cache.hits == 4
    assert max(max(cache.get(("train", i)).shape) for i in range(4)) == WORKING_SIDE_FACTOR * 64


def test_a_negative_cache_budget_is_refused():
    cfg = TrainConfig(job="pretrain", images=["x"], corpus="y", max_steps=1, image_cache_mb=-1)
    with pytest.raises(MedflipError, match="image-cache-mb"):
        cfg.validate()


def test_the_validation_share_is_kept_first_and_never_exceeds_the_budget():
    train_mb, val_mb = split_budget(2048, 400, 224)
    assert val_mb == pytest.approx(400 * 224 * 224 * 4 / 2**20) and train_mb + val_mb == pytest.approx(2048)
    assert split_budget(10, 400, 224) == (0.0, 10)  # a small budget goes to validation first
    assert split_budget(0, 400, 224) == (0.0, 0.0)


def test_a_run_reports_its_caches_and_the_second_evaluation_decodes_nothing(tt, small_folder, corpus, tmp_path):
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path, "--max-steps", "2",
                                                           "--eval-every", "1", "--checkpoint-every", "2"))
    assert code == 0, err[-2000:]
    assert [e["event"] for e in events].count("eval") == 2
    caches = events[-1]["image_cache"]
    assert caches["val"]["images"] == 8 and caches["val"]["misses"] == 8 and caches["val"]["hits"] == 8
    assert caches["train"]["images"] == caches["train"]["misses"] == 8  # two steps of 4, each image once
    assert caches["train"]["refused"] == caches["val"]["refused"] == 0
