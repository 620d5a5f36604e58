"""Classification and retrieval metrics with percentile-bootstrap confidence intervals.

scikit-learn computes the metrics; this module adds the bootstrap, Precision@K and a JSON summary. scikit-learn is
imported where a metric needs it: it costs ~2 s of start-up, and the window imports this module for its results view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int] | None = None) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).tolist()


def per_class_report(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict[str, dict]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(class_names))), zero_division=0
    )
    return {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)}


def roc_auc_binary(y_true: Sequence[bool] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """ROC AUC of a score for a binary truth; NaN when only one class is present.

    Computed as the Mann-Whitney U statistic with average ranks for ties (the same value as sklearn's
    roc_auc_score, about 50 times faster: a patient-level bootstrap calls it thousands of times)."""
    y = np.asarray(y_true).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    s = np.asarray(score, dtype=np.float64).ravel()
    if len(s) != len(y) or not np.isfinite(s).all():
        raise ValueError("ROC AUC needs one finite score per sample")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    return float((average_rank[inverse][y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc_ovr(y_true: Sequence[int], probs: np.ndarray, class_names: Sequence[str]) -> dict:
    """Per-class one-vs-rest AUC and their macro mean over the classes that can be scored."""
    y = np.asarray(y_true)
    per = {name: roc_auc_binary(y == i, probs[:, i]) for i, name in enumerate(class_names)}
    valid = [v for v in per.values() if not math.isnan(v)]
    return {"per_class": per, "macro": float(np.mean(valid)) if valid else float("nan"),
            "undefined": [n for n, v in per.items() if math.isnan(v)]}


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float
    n_boot: int
    skipped: int  # resamples where the metric was undefined (e.g. a single class drawn)

    def as_dict(self) -> dict:
        return {"value": self.point, "ci95": [self.low, self.high], "n_boot": self.n_boot, "skipped": self.skipped}


def _resample_plan(n: int, groups: np.ndarray | None, stratify: np.ndarray | None) -> list[list[np.ndarray]]:
    """Units to draw, per stratum: each unit is the row indices of one group (a patient), or one row.

    Resampling whole patients keeps the images of one patient together: a patient with 14 images counts as
    one draw, as in the data a model meets, instead of 14 independent ones (which narrows the CI falsely).
    With `stratify`, a group's stratum is the stratum of its first row.
    """
    g = np.arange(n) if groups is None else np.asarray(groups)
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} entries for {n} samples")
    _, first, inverse = np.unique(g, return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))
    units = np.split(order, bounds[:-1])
    units = [units[k] for k in np.argsort(first, kind="stable")]  # groups in order of first appearance
    if stratify is None:
        return [units]
    strata = np.asarray(stratify)
    keys = [strata[u[0]] for u in units]
    return [[u for u, k in zip(units, keys, strict=True) if k == s] for s in np.unique(keys)]


def _bootstrap_values(
    metric: Callable[..., float], arrays: tuple[np.ndarray, ...], n_boot: int, seed: int,
    stratify: np.ndarray | None = None, groups: np.ndarray | None = None,
) -> tuple[list[float], int]:
    """The metric on `n_boot` resamples (rows of every array drawn together; with `groups`, whole groups are
    drawn with replacement), and how many resamples were undefined."""
    n = len(arrays[0])
    plan = _resample_plan(n, groups, stratify) if groups is not None else None
    strata = None if stratify is None else [np.flatnonzero(stratify == g) for g in np.unique(stratify)]
    rng = np.random.default_rng(seed)
    values: list[float] = []
    skipped = 0
    for _ in range(n_boot):
        if plan is not None:
            idx = np.concatenate([units[j] for units in plan for j in rng.integers(0, len(units), len(units))])
        elif strata is not None:
            idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in strata])
        else:
            idx = rng.integers(0, n, n)
        try:
            v = float(metric(*(a[idx] for a in arrays)))
        except ValueError:
            v = float("nan")
        if math.isnan(v):
            skipped += 1
        else:
            values.append(v)
    return values, skipped


def bootstrap_ci(
    metric: Callable[..., float], *arrays: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
    stratify: np.ndarray | None = None, groups: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap over samples (rows of every array resampled together).

    `groups` (e.g. patient ids, one per row) makes it a cluster bootstrap: patients are drawn with
    replacement and bring all their images along. Use it whenever a patient can have several images.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    point = float(metric(*arrays))
    values, skipped = _bootstrap_values(metric, arrays, n_boot, seed, stratify, groups)
    if not values:
        return Interval(point, float("nan"), float("nan"), n_boot, skipped)
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(low), float(high), n_boot, skipped)


def exact_binomial_ci(successes: float, trials: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson interval of a proportion seen as `successes` of `trials` independent units (a fractional
    count is allowed: a per-image rate times the number of patients).

    Used where a patient bootstrap cannot show the uncertainty: with a handful of patients, or when every
    resample gives the same value (perfect separation gives a bootstrap CI of 1.000-1.000 whatever the number of
    patients, while 4 of 4 patients right still only bounds the rate above 0.40)."""
    from scipy.stats import beta

    if trials <= 0:
        return float("nan"), float("nan")
    x = min(max(float(successes), 0.0), float(trials))
    low = float(beta.ppf(alpha / 2, x, trials - x + 1)) if x > 0 else 0.0
    high = float(beta.ppf(1 - alpha / 2, x + 1, trials - x)) if x < trials else 1.0
    return low, high


def paired_bootstrap_difference(
    metric: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray, score_a: np.ndarray,
    score_b: np.ndarray, n_boot: int = 2000, seed: int = 0, groups: np.ndarray | None = None,
) -> dict:
    """metric(a) - metric(b) for two models scored on the SAME samples, with a paired percentile bootstrap.

    Both models see the same resampled rows, so the shared difficulty of the sample cancels out: the CI of the
    difference is much narrower than comparing two independent CIs. `p_b_not_worse` is the share of bootstrap
    replicates in which b did at least as well as a (a one-sided bootstrap p-value for "a beats b").
    `groups` (patient ids) resamples patients, not images.
    """
    y, a, b = (np.asarray(x) for x in (y_true, score_a, score_b))
    if not (len(y) == len(a) == len(b)):
        raise ValueError("paired comparison needs the same samples for both models")

    def difference(yy: np.ndarray, aa: np.ndarray, bb: np.ndarray) -> float:
        return metric(yy, aa) - metric(yy, bb)

    point = float(difference(y, a, b))
    diffs, _ = _bootstrap_values(difference, (y, a, b), n_boot, seed, groups=groups)
    unit = "patient" if groups is not None else "image"
    if not diffs:
        return {"difference": point, "ci95": [float("nan"), float("nan")], "p_b_not_worse": float("nan"),
                "n_boot": n_boot, "resampled": unit}
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": point, "ci95": [float(low), float(high)],
            "p_b_not_worse": float(np.mean(np.asarray(diffs) <= 0)), "n_boot": len(diffs), "resampled": unit}


def precision_at_k(retrieved_labels: np.ndarray, query_labels: np.ndarray, ks: Sequence[int] = (1, 2, 5, 10)) -> dict:
    """Mean over queries of (hits in the top K) / K; a hit is a retrieved item whose label equals the query's."""
    retrieved = np.asarray(retrieved_labels)
    query = np.asarray(query_labels).reshape(-1, 1)
    hits = retrieved == query
    return {int(k): float(hits[:, :k].sum(axis=1).mean() / k) for k in ks if k <= retrieved.shape[1]}


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-width confidence bins: the mean |accuracy - confidence| weighted by bin size.

    `probs` (N, C) with class indices `y_true`: top-label calibration (confidence = the largest probability,
    correct = it is the true class). `probs` (N,) with 0/1 `y_true`: calibration of P(positive).
    """
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2:
        confidence = p.max(axis=1)
        correct = (p.argmax(axis=1) == y).astype(np.float64)
    else:
        confidence, correct = p, y.astype(np.float64)
    if len(confidence) == 0:
        return float("nan")
    bins = np.clip((confidence * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        sel = bins == b
        total += sel.sum() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(total / len(confidence))


def ece_if_calibrated(probs: np.ndarray, n_bins: int = 10, n_sim: int = 300, seed: int = 0) -> dict:
    """The ECE that perfectly calibrated probabilities would show on this many images: labels drawn from the
    probabilities themselves, ECE measured as usual. ECE is biased upwards in small samples (92 images:
    about 0.07 for a perfect model), so a measured ECE means little until it is compared with this floor.
    Returns the mean and the 5th-95th percentile range over the simulations."""
    p = np.asarray(probs, dtype=np.float64)
    if len(p) == 0:
        return {"mean": float("nan"), "range90": [float("nan"), float("nan")], "n_sim": n_sim}
    rng = np.random.default_rng(seed)
    sims = []
    if p.ndim == 1:  # P(positive), measured as expected_calibration_error measures it
        for _ in range(n_sim):
            sims.append(expected_calibration_error((rng.random(len(p)) < p).astype(int), p, n_bins))
    else:  # top-label: a class drawn from each row
        cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        for _ in range(n_sim):
            drawn = (rng.random((len(p), 1)) > cumulative).sum(axis=1).clip(max=p.shape[1] - 1)
            sims.append(expected_calibration_error(drawn, p, n_bins))
    return {"mean": float(np.mean(sims)), "range90": [float(v) for v in np.percentile(sims, [5, 95])],
            "n_sim": n_sim}


def best_threshold_accuracy(y_true: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(highest accuracy over every threshold on a binary score, that threshold): an upper bound that shows how
    much accuracy a decision rule leaves on the table. Chosen on the data it is measured on: not a result."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    # predict positive for the top k scores, k = 0..n; accuracy = (TP + TN) / n
    tp = np.concatenate([[0], np.cumsum(ys)])
    fp = np.concatenate([[0], np.cumsum(~ys)])
    acc = (tp + (int((~y).sum()) - fp)) / len(y)
    # only cut between distinct scores
    valid = np.concatenate([[True], np.append(ss[1:] != ss[:-1], True)])
    k = int(np.flatnonzero(valid)[np.argmax(acc[valid])])
    threshold = float("inf") if k == 0 else float(ss[k - 1])
    return float(acc[k]), threshold


def evaluation_summary(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], positive: str | None = None,
    n_boot: int = 1000, seed: int = 0, groups: np.ndarray | None = None,
) -> dict:
    """Accuracy, macro-F1, calibration error, ROC AUC (per class, macro, or the positive class for a binary task)
    with 95 % CIs. `groups` (patient ids, one per row) makes every CI resample patients instead of images."""
    y = np.asarray(y_true)
    pred = probs.argmax(axis=1)
    names = list(class_names)
    boot = {"n_boot": n_boot, "seed": seed, "groups": groups}
    out: dict = {
        "n": int(len(y)),
        "n_patients": int(len(np.unique(groups))) if groups is not None else None,
        "resampled": "patients" if groups is not None else "images",
        "n_per_class": {n: int((y == i).sum()) for i, n in enumerate(names)},
        "accuracy": bootstrap_ci(accuracy, y, pred, **boot).as_dict(),
        "macro_f1": bootstrap_ci(lambda a, b: macro_f1(a, b, list(range(len(names)))), y, pred, **boot).as_dict(),
        "ece": bootstrap_ci(expected_calibration_error, y, probs, **boot).as_dict(),
        "ece_if_calibrated": ece_if_calibrated(probs),
        "per_class": per_class_report(y, pred, names),
        "confusion_matrix": {"classes": names, "rows_true_cols_pred": confusion(y, pred, len(names))},
    }
    auc_per = {}
    for i, name in enumerate(names):
        auc_per[name] = bootstrap_ci(lambda a, s, i=i: roc_auc_binary(a == i, s), y, probs[:, i], **boot).as_dict()
    out["roc_auc_per_class"] = auc_per
    valid = [v["value"] for v in auc_per.values() if not math.isnan(v["value"])]

    def macro_auc(a: np.ndarray, p: np.ndarray) -> float:
        return roc_auc_ovr(a, p, names)["macro"]

    out["roc_auc_macro"] = bootstrap_ci(macro_auc, y, probs, **boot).as_dict() if valid else None
    if positive is not None:
        if positive not in names:
            raise ValueError(f"--positive {positive!r} is not one of the classes {names}")
        i = names.index(positive)
        out["positive_class"] = positive
        out["roc_auc"] = auc_per[positive]
        if len(names) == 2:
            best, threshold = best_threshold_accuracy(y == i, probs[:, i])
            out["best_threshold_accuracy"] = {"value": best, "threshold": threshold,
                                              "note": "upper bound, threshold chosen on these same images"}
    return out


# `medflip evaluate --json` writes the same top-level keys for a CLIP bundle (zero-shot on the class folders:
# evaluation/evaluate.py) and for a classifier bundle (its own classes: finetune/evaluate.py), each key the same
# concept in both. A figure that one kind has no value for is null there, never left out; `per_class` holds
# each kind's own per-class details.
EVALUATION_KEYS: tuple[str, ...] = (
    "kind",  # "zero-shot" or "classifier"
    "model", "data_set", "classes",
    "data_classes",  # {class: the data's folder or label column it was matched with}
    "label_texts",  # zero-shot: the text each class was scored with, in class order; classifier: null
    "multi_label",  # classes decided independently (a multi-label classifier), else one class per image
    "decision_rule",  # how probabilities become decisions, in a sentence
    "decision_rule_parameters",  # zero-shot: mode, bias, temperature, chosen_on; classifier: calibration, thresholds
    "images", "patients", "images_per_class",
    "resampled", "n_boot",  # what the 95 % CIs resample ("patients") and how often
    "accuracy", "macro_f1",  # of the decisions, with CIs; null for a multi-label classifier
    "roc_auc_per_class", "roc_auc_macro",  # with CIs
    "positive_class", "roc_auc",  # --positive: the class and its ROC AUC with CI; else null
    "best_threshold_accuracy",  # zero-shot, binary, --positive: an upper bound on these images; else null
    "ece", "ece_kind", "ece_if_calibrated",  # calibration error with CI, how it is read, its floor on this many
    "confusion",  # {kind, classes, rows_true_cols_pred}, or for a multi-label classifier {kind, labels}
    "per_class",
    "small_validation",  # a classifier's classes with too few patients to judge; zero-shot: null
    "skipped", "skipped_examples",  # unreadable files
    "out_of_distribution", "out_of_distribution_examples",  # null where the check was not run
    "notes",
    "seconds",
)


def evaluation_record(**values: object) -> dict:
    """`values` in EVALUATION_KEYS order; a key missing or one not in EVALUATION_KEYS is a programming error."""
    missing = [k for k in EVALUATION_KEYS if k not in values]
    unknown = [k for k in values if k not in EVALUATION_KEYS]
    if missing or unknown:
        raise ValueError(f"evaluation keys missing {missing}, not in EVALUATION_KEYS {unknown}")
    return {k: values[k] for k in EVALUATION_KEYS}
