"""A film's two exposure numbers come from the one preprocessing path: the bench's 32x32 pixels, summarised."""

from __future__ import annotations

import numpy as np

from medflip_core.evaluation.features import pixel_source
from medflip_core.evaluation.fewshot import build_tasks
from medflip_core.imaging import load_image
from medflip_core.imaging.exposure import exposure_stats, film_exposure
from medflip_core.imaging.preprocess import PreprocessConfig


def test_exposure_is_the_mean_and_spread_of_the_32px_model_input(shared_data):
    task = build_tasks(shared_data, ("kermany_bacterial_viral",), max_per_class=6)["kermany_bacterial_viral"]
    pixels = pixel_source().extract(task.paths)["pixels"]  # what the few-label bench's pixel baseline reads
    stats = exposure_stats(pixels)
    assert stats.shape == (12, 2)
    assert np.allclose(stats[3], [pixels[3].mean(), pixels[3].std()])
    # real films differ in brightness; every film has some contrast
    assert np.ptp(stats[:, 0]) > 0.05 and np.all(stats[:, 1] > 0)
    # one film, one path: film_exposure on the decoded film gives the same two numbers as the bench
    one = film_exposure(load_image(task.paths[3]))
    np.testing.assert_allclose(one, stats[3], rtol=1e-5, atol=1e-5)


def test_exposure_is_read_at_32px_whatever_the_models_input_size(shared_data):
    film = load_image(next((shared_data / "cxr-nih-adult" / "images").glob("*.jpg")))
    at_224 = film_exposure(film, PreprocessConfig(image_size=224))
    at_default = film_exposure(film)
    np.testing.assert_allclose(at_224, at_default, rtol=1e-6)
    # another normalisation moves the numbers linearly (the check standardises them before it fits)
    other = film_exposure(film, PreprocessConfig(mean=0.4, std=0.2))
    np.testing.assert_allclose(other[0], (at_default[0] * 0.25 + 0.5 - 0.4) / 0.2, rtol=1e-4)
    np.testing.assert_allclose(other[1], at_default[1] * 0.25 / 0.2, rtol=1e-4)
