"""Sampling over sources and classes: weights, balance, and bit-exact repeatability per (seed, step, rank)."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.data.image_folder import index_image_folder
from medflip_core.data.label_csv import read_label_csv
from medflip_core.data.sampling import MixedSampler, build_sources


@pytest.fixture(scope="module")
def two_sources(shared_data):
    kermany = index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")
    nih = read_label_csv(shared_data / "cxr-nih-adult" / "labels.csv", labels=["No Finding", "Pneumonia"])
    records = kermany + nih.to_records()
    sources = ["kermany"] * len(kermany) + ["nih"] * len(nih)
    return records, build_sources(sources, [r.class_name for r in records])


def test_weights_and_class_balance_on_real_sources(two_sources):
    records, sources = two_sources
    sampler = MixedSampler(sources, batch_size=64, seed=0, weights={"kermany": 0.5, "nih": 0.5})
    picks = np.concatenate([sampler.indices_for_step(step) for step in range(60)])
    n_kermany = 5216
    from_nih = picks >= n_kermany
    assert 0.45 < from_nih.mean() < 0.55  # NIH is 12 % of the images but half of the draws
    nih_classes = [records[i].class_name for i in picks[from_nih]]
    assert 0.42 < nih_classes.count("Pneumonia") / len(nih_classes) < 0.58
    kermany_classes = [records[i].class_name for i in picks[~from_nih]]
    assert 0.42 < kermany_classes.count("NORMAL") / len(kermany_classes) < 0.58  # 26 % NORMAL in the folder
    assert sampler.describe()["images_per_source"] == {"kermany": 5216, "nih": len(records) - 5216}


def test_same_seed_step_rank_same_batch_and_ranks_differ(two_sources):
    _, sources = two_sources
    a = MixedSampler(sources, 16, seed=3, weights={"nih": 2.0})
    b = MixedSampler(sources, 16, seed=3, weights={"nih": 2.0})
    assert np.array_equal(a.indices_for_step(41), b.indices_for_step(41))  # a resumed run redraws step 41
    assert not np.array_equal(a.indices_for_step(41, rank=0), a.indices_for_step(41, rank=1))
    assert not np.array_equal(a.indices_for_step(41), a.indices_for_step(42))


def test_bad_weights_are_refused(two_sources):
    _, sources = two_sources
    with pytest.raises(ValueError, match="unknown sources"):
        MixedSampler(sources, 8, 0, weights={"chexpert": 1.0})
    with pytest.raises(ValueError, match="not all zero"):
        MixedSampler(sources, 8, 0, weights={"kermany": 0.0, "nih": 0.0})


def test_trainer_mixes_sources_augments_and_holds_out_their_validation_patients(shared_data, small_folder):
    """The trainer's wiring: --extra-sources NIH CSV, --source-weights, --augment (no model needed)."""
    from medflip_core.data.label_csv import validation_patients
    from medflip_core.imaging.augment import AugmentConfig
    from medflip_core.imaging.preprocess import PreprocessConfig
    from trainer.batches import ImageBatches
    from trainer.config import TrainConfig
    from trainer.training_data import build_training_data, make_sampler

    nih_csv = shared_data / "cxr-nih-adult" / "labels.csv"
    cfg = TrainConfig(job="finetune", images=[str(small_folder)], extra_sources=[str(nih_csv)],
                      source_weights="1,3", augment=True, max_steps=1, val_fraction=0.15)
    data = build_training_data(cfg, tokenize=None)
    held_out = validation_patients(nih_csv, 0.15, 0)
    assert held_out and not held_out & {r.patient_id for r in data.train}
    n_nih = data.sources.count(str(nih_csv))
    assert 600 < n_nih < 721 and n_nih + data.sources.count("images") == len(data.train)
    sampler = make_sampler(cfg, data, 8)
    assert sampler.describe()["source_probability"] == {"images": 0.25, str(nih_csv): 0.75}
    batches = ImageBatches(data.train, PreprocessConfig(image_size=64), 8, 0, sampler=sampler,
                           augment=AugmentConfig())
    first, again = batches.batch(3), batches.batch(3)
    assert first.pixels.shape == (8, 1, 64, 64) and first.used == again.used
    assert torch_equal(first.pixels, again.pixels)  # augmentation is deterministic per (seed, step, rank, image)
    plain = ImageBatches(data.train, PreprocessConfig(image_size=64), 8, 0, sampler=sampler).batch(3)
    assert plain.used == first.used and not torch_equal(plain.pixels, first.pixels)
    # without extra sources or weights: no sampler, today's epoch-wise shuffle
    assert make_sampler(TrainConfig(job="finetune", images=[str(small_folder)], max_steps=1),
                        build_training_data(TrainConfig(job="finetune", images=[str(small_folder)], max_steps=1),
                                            None), 8) is None


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_size_weights_and_image_sampling_keep_the_folders_own_mix(shared_data, small_folder, two_sources):
    """The two alternatives the data ablation measures: sources in proportion to their size, and a uniform
    image of the source instead of a uniform class."""
    from trainer.config import TrainConfig
    from trainer.training_data import build_training_data, make_sampler

    nih_csv = shared_data / "cxr-nih-adult" / "labels.csv"
    cfg = TrainConfig(job="finetune", images=[str(small_folder)], extra_sources=[str(nih_csv)],
                      source_weights="size", sample_within_source="image", max_steps=1, val_fraction=0.15)
    data = build_training_data(cfg, tokenize=None)
    sampler = make_sampler(cfg, data, 64)
    n_nih = data.sources.count(str(nih_csv))
    assert sampler.describe()["source_probability"][str(nih_csv)] == round(n_nih / len(data.train), 4)
    assert "a uniform image" in sampler.describe()["sampling"] and not sampler.balance_classes
    # a uniform image keeps the folder's own mix: Kermany train is 26 % NORMAL (balanced: 50 %)
    records, sources = two_sources
    plain = MixedSampler(sources, 64, seed=0, weights={"kermany": 1.0, "nih": 0.0}, balance_classes=False)
    picks = np.concatenate([plain.indices_for_step(s) for s in range(60)])
    normal = np.mean([records[i].class_name == "NORMAL" for i in picks])
    assert 0.21 < normal < 0.31
    with pytest.raises(Exception, match="sample-within-source"):
        TrainConfig(job="finetune", images=[str(small_folder)], sample_within_source="label", max_steps=1).validate()
