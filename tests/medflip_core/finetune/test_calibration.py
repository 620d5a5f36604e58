"""Calibration and thresholds: known answers on drawn data (the math), the ranking kept (no AUC change)."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.finetune.calibration import fit_calibration, fit_platt, fit_temperature, youden_threshold
from medflip_core.inference.classifier import calibrated_probabilities, sigmoid, softmax
from medflip_core.metrics import expected_calibration_error, roc_auc_binary


def test_temperature_recovers_the_temperature_that_drew_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (6000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(logits / 2.5)])
    assert fit_temperature(logits, y) == pytest.approx(2.5, rel=0.1)


def test_temperature_lowers_the_calibration_error_of_overconfident_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (3000, 2))
    y = np.array([rng.choice(2, p=p) for p in softmax(logits)])
    overconfident = 4 * logits
    cal = fit_calibration(overconfident, np.eye(2, dtype=int)[y], multi_label=False)
    before = expected_calibration_error(y, softmax(overconfident))
    after = expected_calibration_error(y, calibrated_probabilities(overconfident, False, cal))
    assert after < before / 2


def test_platt_recovers_scale_and_offset_and_never_reverses_the_ranking():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 8000)
    y = rng.random(8000) < sigmoid(0.5 * z - 1.0)
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.5, abs=0.06) and b == pytest.approx(-1.0, abs=0.1)
    a_rev, _ = fit_platt(-z, y)  # a head that ranks backwards stays backwards: a > 0 always
    assert a_rev > 0
    assert roc_auc_binary(y, sigmoid(a_rev * -z)) < 0.5


def test_youden_threshold_is_the_best_cut():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    t = youden_threshold(y, s)
    assert t == pytest.approx(0.65) or t == pytest.approx(0.35)  # half-way into the gap below the best cut
    pred = s >= t
    j = pred[y == 1].mean() + (~pred[y == 0]).mean() - 1
    assert j == pytest.approx(0.75)
    assert youden_threshold(np.ones(4), s[:4]) == 0.5  # one class: nothing to choose, a neutral cut


def test_youden_threshold_on_separated_scores_leaves_a_margin():
    """Perfectly separated, nearly saturated validation scores: the cut is not the lowest positive's own score."""
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.01, 0.02, 0.40, 0.99999, 0.999995, 0.999999])
    t = youden_threshold(y, s)
    assert 0.40 < t < 0.99999
    assert t == pytest.approx((0.40 + 0.99999) / 2)
