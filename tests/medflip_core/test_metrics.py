from __future__ import annotations

import math

import numpy as np
import pytest

from medflip_core.metrics import (
    accuracy,
    bootstrap_ci,
    evaluation_summary,
    macro_f1,
    paired_bootstrap_difference,
    precision_at_k,
    roc_auc_binary,
    roc_auc_ovr,
)


def test_auc_is_fraction_of_correctly_ordered_pairs():
    y = [1, 0, 1, 0]
    s = [0.9, 0.8, 0.3, 0.1]  # pairs (pos, neg): (.9,.8) ok (.9,.1) ok (.3,.8) wrong (.3,.1) ok -> 3/4
    assert roc_auc_binary(y, s) == pytest.approx(0.75)
    assert math.isnan(roc_auc_binary([1, 1], [0.2, 0.3]))


def test_accuracy_and_macro_f1_by_hand():
    y, p = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    assert accuracy(y, p) == pytest.approx(3 / 5)
    # class 0: P 1/2 R 1/2 F 1/2; class 1: P 2/3 R 1 F 0.8; class 2: F 0
    assert macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_ovr_auc_handles_absent_class():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    out = roc_auc_ovr([0, 1, 0], probs, ["a", "b", "c"])
    assert out["per_class"]["a"] == pytest.approx(1.0)
    assert math.isnan(out["per_class"]["c"]) and out["undefined"] == ["c"]
    assert out["macro"] == pytest.approx(1.0)


def test_precision_at_k_by_hand():
    retrieved = np.array([[0, 1, 0, 0, 1], [1, 1, 0, 1, 1], [2, 0, 0, 0, 0]])
    query = np.array([0, 1, 0])
    p = precision_at_k(retrieved, query, ks=(1, 2, 5))
    assert p[1] == pytest.approx((1 + 1 + 0) / 3)
    assert p[2] == pytest.approx((1 / 2 + 2 / 2 + 1 / 2) / 3)
    assert p[5] == pytest.approx((3 / 5 + 4 / 5 + 4 / 5) / 3)


def test_bootstrap_contains_point_narrows_with_n_and_is_deterministic():
    rng = np.random.default_rng(0)

    def data(n):
        y = rng.integers(0, 2, n)
        return y, y * 0.6 + rng.random(n)

    small = bootstrap_ci(roc_auc_binary, *data(40), n_boot=300, seed=1)
    big = bootstrap_ci(roc_auc_binary, *data(2000), n_boot=300, seed=1)
    assert small.low <= small.point <= small.high
    assert (big.high - big.low) < (small.high - small.low)
    y, s = data(50)
    assert bootstrap_ci(roc_auc_binary, y, s, seed=3) == bootstrap_ci(roc_auc_binary, y, s, seed=3)


def test_bootstrap_counts_undefined_resamples():
    y = np.array([1] + [0] * 9)
    s = np.linspace(0, 1, 10)
    ci = bootstrap_ci(roc_auc_binary, y, s, n_boot=200, seed=0)
    assert ci.skipped > 0 and ci.skipped < 200


def test_evaluation_summary_binary_with_positive():
    y = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55], [0.7, 0.3]])
    out = evaluation_summary(y, probs, ["NORMAL", "PNEUMONIA"], positive="PNEUMONIA", n_boot=50)
    assert out["n"] == 5 and out["n_per_class"] == {"NORMAL": 2, "PNEUMONIA": 3}
    assert out["accuracy"]["value"] == pytest.approx(4 / 5)
    assert out["roc_auc"]["value"] == pytest.approx(5 / 6)
    assert out["confusion_matrix"]["rows_true_cols_pred"] == [[2, 0], [1, 2]]
    with pytest.raises(ValueError):
        evaluation_summary(y, probs, ["NORMAL", "PNEUMONIA"], positive="COVID", n_boot=10)


def test_paired_difference_sees_a_real_gap_that_independent_cis_would_blur():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.5
    difficulty = rng.normal(size=400)  # shared by both models: cancels in the paired comparison
    good = y * 1.0 + 0.8 * difficulty + 0.3 * rng.normal(size=400)
    worse = y * 0.8 + 0.8 * difficulty + 0.3 * rng.normal(size=400)
    d = paired_bootstrap_difference(roc_auc_binary, y, good, worse, n_boot=500)
    assert d["difference"] == pytest.approx(roc_auc_binary(y, good) - roc_auc_binary(y, worse))
    assert 0 < d["ci95"][0] <= d["difference"] <= d["ci95"][1]
    assert d["p_b_not_worse"] < 0.05
    a = bootstrap_ci(roc_auc_binary, y, good, n_boot=500)
    b = bootstrap_ci(roc_auc_binary, y, worse, n_boot=500)
    assert a.low < b.high  # the separate intervals overlap
    same = paired_bootstrap_difference(roc_auc_binary, y, good, good, n_boot=100)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0] and same["p_b_not_worse"] == 1.0


def test_paired_difference_needs_the_same_samples():
    with pytest.raises(ValueError, match="same samples"):
        paired_bootstrap_difference(roc_auc_binary, np.array([0, 1]), np.array([0.1, 0.9]), np.array([0.5]))


def _duplicated(n_patients: int, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each patient's image scored `copies` times (identical rows): images are not independent evidence."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_patients)
    s = y * 0.8 + rng.random(n_patients)
    return np.repeat(y, copies), np.repeat(s, copies), np.repeat(np.arange(n_patients), copies)


def test_patient_bootstrap_is_wider_than_image_bootstrap_for_duplicated_images():
    y, s, patients = _duplicated(60, copies=6)
    by_image = bootstrap_ci(roc_auc_binary, y, s, n_boot=400, seed=0)
    by_patient = bootstrap_ci(roc_auc_binary, y, s, n_boot=400, seed=0, groups=patients)
    assert by_image.point == by_patient.point
    assert (by_patient.high - by_patient.low) > 1.8 * (by_image.high - by_image.low)
    # one image per patient: the patient CI is what the image CI on the de-duplicated data says
    once = bootstrap_ci(roc_auc_binary, y[::6], s[::6], n_boot=400, seed=0)
    assert (by_patient.high - by_patient.low) == pytest.approx(once.high - once.low, rel=0.35)


def test_patient_bootstrap_keeps_a_patient_images_together():
    seen = []

    def record(yy, pp):
        seen.append(pp.copy())
        return float(len(pp))

    y = np.array([0, 1, 1, 0, 1])
    patients = np.array(["a", "b", "b", "c", "c"])
    bootstrap_ci(record, y, patients, n_boot=50, seed=2, groups=patients)
    for draw in seen[1:]:
        counts = {p: int((draw == p).sum()) for p in set(draw)}
        assert counts.get("b", 0) % 2 == 0 and counts.get("c", 0) % 2 == 0


def test_paired_difference_by_patient_is_wider_than_by_image():
    y, good, patients = _duplicated(50, copies=5, seed=3)
    rng = np.random.default_rng(1)
    worse = np.repeat(good[::5] + rng.normal(0, 0.6, 50), 5)
    by_image = paired_bootstrap_difference(roc_auc_binary, y, good, worse, n_boot=400)
    by_patient = paired_bootstrap_difference(roc_auc_binary, y, good, worse, n_boot=400, groups=patients)
    assert by_patient["resampled"] == "patient" and by_image["resampled"] == "image"
    assert by_patient["difference"] == by_image["difference"]
    assert (by_patient["ci95"][1] - by_patient["ci95"][0]) > 1.5 * (by_image["ci95"][1] - by_image["ci95"][0])


def test_expected_calibration_error_by_hand():
    from medflip_core.metrics import expected_calibration_error

    # binary: 4 images at p=0.9 of which 2 positive -> |0.5-0.9| ; 4 at p=0.1 of which 0 positive -> 0.1
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9] * 4 + [0.1] * 4)
    assert expected_calibration_error(y, p) == pytest.approx((4 * 0.4 + 4 * 0.1) / 8)
    # top-label: confident and right -> small; confident and wrong -> large
    probs = np.array([[0.95, 0.05], [0.05, 0.95]])
    assert expected_calibration_error(np.array([0, 1]), probs) == pytest.approx(0.05)
    assert expected_calibration_error(np.array([1, 0]), probs) == pytest.approx(0.95)


def test_best_threshold_accuracy_by_hand():
    from medflip_core.metrics import best_threshold_accuracy

    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    acc, threshold = best_threshold_accuracy(y, s)
    assert acc == pytest.approx(5 / 6) and threshold in (0.3, 0.5)
    assert best_threshold_accuracy(np.array([1, 1, 0]), np.array([0.5, 0.5, 0.5]))[0] == pytest.approx(2 / 3)


def test_evaluation_summary_by_patient_reports_patients_and_calibration():
    y, s, patients = _duplicated(40, copies=3, seed=5)
    probs = np.stack([1 - s / s.max(), s / s.max()], axis=1)
    out = evaluation_summary(y, probs, ["NORMAL", "PNEUMONIA"], positive="PNEUMONIA", n_boot=100, groups=patients)
    assert out["resampled"] == "patients" and out["n_patients"] == 40 and out["n"] == 120
    assert 0.0 <= out["ece"]["value"] <= 1.0
    assert out["best_threshold_accuracy"]["value"] >= out["accuracy"]["value"]


def test_rank_auc_equals_sklearn_with_ties_and_refuses_nan():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for n in (2, 7, 50, 400):
        y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
        for s in (rng.random(n), rng.integers(0, 4, n) / 4):  # continuous, and heavily tied scores
            assert roc_auc_binary(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    with pytest.raises(ValueError):
        roc_auc_binary([0, 1, 1], [0.1, float("nan"), 0.3])


def test_ece_floor_shrinks_with_the_sample_and_separates_miscalibration():
    from medflip_core.metrics import ece_if_calibrated, expected_calibration_error

    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 2000)
    small, large = ece_if_calibrated(p[:92]), ece_if_calibrated(p)
    assert small["mean"] > 2 * large["mean"] > 0  # ECE of a perfect model is not 0, and less so with more images
    assert small["range90"][0] < small["mean"] < small["range90"][1]
    y = (rng.random(2000) < p).astype(int)  # labels that really follow p: ECE within the floor's range
    assert expected_calibration_error(y, p) <= large["range90"][1] * 1.5
    overconfident = np.where(p > 0.5, 0.99, 0.01)  # same decisions, confidences pushed to the ends
    assert expected_calibration_error(y, overconfident) > 3 * ece_if_calibrated(overconfident)["range90"][1]
    top_label = ece_if_calibrated(np.stack([1 - p[:92], p[:92]], axis=1))  # (N, C) as evaluate passes it
    assert 0 < top_label["mean"] < 0.2
