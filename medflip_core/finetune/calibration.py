"""Probability calibration fitted on validation, and decision thresholds chosen on validation.

- Multi-class: temperature scaling, p = softmax(z / T), T minimising the validation negative log-likelihood.
  One scalar: it never changes which class ranks first, nor any ROC AUC.
- Multi-label: Platt scaling per label, p = sigmoid(a z + b) with a > 0 (so the ranking, and the AUC, of the
  head is kept), fitted on Platt's smoothed targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2).
- Threshold per class: Youden's J (sensitivity + specificity - 1) maximised over the class's calibrated
  validation probabilities (one-vs-rest for multi-class), placed half-way between the cut score and the next
  lower validation score. Sensitivity and specificity at a threshold chosen on
  the same validation images are optimistic; an evaluation on other patients is the honest figure.
- Confidence cap (every classifier, after the fit): probabilities are shrunk toward the validation prevalence,
  p' = (n p + a prior) / (n + a), n the fewest validation patients of a class (multi-label: of a label's positive
  or negative side), a = one pseudo-patient per outcome (2 for a label, K for K classes). This is Laplace's rule
  of succession: after n of n patients of a class right, the chance that the next one is right is (n + 1) / (n + 2),
  so no probability the validation can back is 0 or 1. With 4 patients a binary probability stays within about
  17-83 %, with 100 within 1-99 %. The map is increasing and affine: rankings, ROC AUCs and the decisions at the
  thresholds chosen after it are those of the unshrunk probabilities (up to float rounding: scores that differ
  below 1e-16 of the cap tie), and softmax rows still sum to 1.
"""

from __future__ import annotations

import math

import numpy as np

from medflip_core.inference.classifier import sigmoid, softmax


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=int)

    def nll(log_t: float) -> float:
        p = softmax(z / math.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))

    res = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(math.exp(res.x))


def fit_platt(logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of sigmoid(a * logit + b), a > 0."""
    from scipy.optimize import minimize

    z = np.asarray(logit, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    target = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def nll(theta: np.ndarray) -> float:
        p = np.clip(sigmoid(math.exp(theta[0]) * z + theta[1]), 1e-12, 1 - 1e-12)
        return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))

    res = minimize(nll, x0=np.array([0.0, 0.0]), method="L-BFGS-B", bounds=[(-6.0, 6.0), (-30.0, 30.0)])
    return float(math.exp(res.x[0])), float(res.x[1])


def fit_calibration(logits: np.ndarray, indicator: np.ndarray, multi_label: bool) -> dict:
    if multi_label:
        pairs = [fit_platt(logits[:, j], indicator[:, j]) for j in range(indicator.shape[1])]
        return {"method": "platt", "scale": [a for a, _ in pairs], "offset": [b for _, b in pairs],
                "fitted_on": "validation"}
    return {"method": "temperature", "temperature": fit_temperature(logits, indicator.argmax(axis=1)),
            "fitted_on": "validation"}


def prior_shrinkage(n_patients: int | list[int], prior: list[float], pseudo_patients: int | list[int]) -> dict:
    """The confidence cap (module docstring) as the calibration's `shrink` entry: weight a / (n + a) per label (a
    list, multi-label) or one weight for all classes (multi-class: the rows must keep summing to 1), the prior,
    and the range each class's probability is held to."""
    n = np.asarray(n_patients, dtype=np.float64)
    a = np.asarray(pseudo_patients, dtype=np.float64)
    weight = a / (n + a)
    pi = np.asarray(prior, dtype=np.float64)
    low, high = weight * pi, 1.0 - weight * (1.0 - pi)
    return {"rule": "p' = (n p + a prior) / (n + a): Laplace's rule of succession over the validation patients",
            "patients": n_patients, "pseudo_patients": pseudo_patients, "weight": weight.tolist(), "prior": pi.tolist(),
            "range": [[float(lo), float(hi)] for lo, hi in zip(np.broadcast_to(low, pi.shape),
                                                                np.broadcast_to(high, pi.shape), strict=True)]}


def youden_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The score at which sensitivity + specificity - 1 is largest (predict positive at score >= threshold)."""
    from sklearn.metrics import roc_curve

    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return 0.5
    score = np.asarray(score, dtype=np.float64)
    fpr, tpr, thr = roc_curve(y, score)
    j = np.where(np.isfinite(thr), tpr - fpr, -np.inf)
    cut = float(thr[int(np.argmax(j))])
    # The cut is a validation image's own score; on a small or perfectly separated validation set that sits
    # on the edge (e.g. 1.000 after calibration). Half-way to the next lower score keeps the same decisions
    # on validation and leaves a margin on both sides for unseen images.
    below = score[score < cut]
    return float(min((cut + below.max()) / 2 if below.size else cut, 1.0))


def choose_thresholds(probs: np.ndarray, indicator: np.ndarray) -> np.ndarray:
    return np.array([youden_threshold(indicator[:, j], probs[:, j]) for j in range(indicator.shape[1])])


def ece_summary(probs: np.ndarray, indicator: np.ndarray, multi_label: bool) -> float:
    """Multi-class: top-label ECE (confidence of the predicted class vs being right); multi-label: the mean
    of the per-label ECEs (metrics.expected_calibration_error, 10 equal-width bins)."""
    from medflip_core.metrics import expected_calibration_error

    if multi_label:
        return float(np.mean([expected_calibration_error(indicator[:, j], probs[:, j])
                              for j in range(indicator.shape[1])]))
    return expected_calibration_error(indicator.argmax(axis=1), probs)
