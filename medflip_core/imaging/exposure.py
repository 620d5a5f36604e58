"""A film's exposure in two numbers: the mean and the spread of its model input at 32 x 32 pixels.

The one preprocessing path (imaging.preprocess, letterbox padding included) at a small side, so the numbers
describe what a model is given, not the file. They carry the film's brightness and contrast, which depend on the
machine, the protocol and the patient's size as much as on any finding: on the shared Kermany films they alone
separate bacterial from viral pneumonia as well as all 1,024 raw pixels do (docs/results.md). The few-label bench
prints them as a baseline, and a classifier's validation reports whether they separate its labels
(finetune.exposure_check).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from medflip_core.imaging.radiograph import Radiograph

EXPOSURE_SIDE = 32


def exposure_stats(pixels: np.ndarray) -> np.ndarray:
    """(n, 2): each row's mean and standard deviation, for n flattened model inputs (n, d)."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(len(pixels), -1)
    return np.stack([pixels.mean(axis=1), pixels.std(axis=1)], axis=1)


def film_exposure(image: Radiograph | np.ndarray, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """(2,) float32: the mean and spread of the film's model input at EXPOSURE_SIDE px (the normalisation of
    `cfg`, a bundle's preprocessing, applied; its image size is not: exposure is always read at 32 px)."""
    small = replace(cfg or PreprocessConfig(), image_size=EXPOSURE_SIDE)
    return exposure_stats(preprocess(image, small)[None])[0].astype(np.float32)
