"""Classification and retrieval metrics with percentile-bootstrap confidence intervals.

scikit-learn computes the metrics; this module adds the bootstrap, Precision@K and a JSON summary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int] | None = None) -> float:
    return float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> list[list[int]]:
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).tolist()


def per_class_report(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict[str, dict]:
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(class_names))), zero_division=0
    )
    return {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)}


def roc_auc_binary(y_true: Sequence[bool] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """ROC AUC of a score for a binary truth; NaN when only one class is present."""
    y = np.asarray(y_true).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(score, dtype=np.float64)))


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


def _bootstrap_values(
    metric: Callable[..., float], arrays: tuple[np.ndarray, ...], n_boot: int, seed: int,
    stratify: np.ndarray | None = None,
) -> tuple[list[float], int]:
    """The metric on `n_boot` resamples (rows of every array drawn together), and how many were undefined."""
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    values: list[float] = []
    skipped = 0
    groups = None if stratify is None else [np.flatnonzero(stratify == g) for g in np.unique(stratify)]
    for _ in range(n_boot):
        if groups is None:
            idx = rng.integers(0, n, n)
        else:
            idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
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
    stratify: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap over samples (rows of every array resampled together)."""
    arrays = tuple(np.asarray(a) for a in arrays)
    point = float(metric(*arrays))
    values, skipped = _bootstrap_values(metric, arrays, n_boot, seed, stratify)
    if not values:
        return Interval(point, float("nan"), float("nan"), n_boot, skipped)
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(low), float(high), n_boot, skipped)


def paired_bootstrap_difference(
    metric: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray, score_a: np.ndarray,
    score_b: np.ndarray, n_boot: int = 2000, seed: int = 0,
) -> dict:
    """metric(a) - metric(b) for two models scored on the SAME samples, with a paired percentile bootstrap.

    Both models see the same resampled rows, so the shared difficulty of the sample cancels out: the CI of the
    difference is much narrower than comparing two independent CIs. `p_b_not_worse` is the share of bootstrap
    replicates in which b did at least as well as a (a one-sided bootstrap p-value for "a beats b").
    """
    y, a, b = (np.asarray(x) for x in (y_true, score_a, score_b))
    if not (len(y) == len(a) == len(b)):
        raise ValueError("paired comparison needs the same samples for both models")

    def difference(yy: np.ndarray, aa: np.ndarray, bb: np.ndarray) -> float:
        return metric(yy, aa) - metric(yy, bb)

    point = float(difference(y, a, b))
    diffs, _ = _bootstrap_values(difference, (y, a, b), n_boot, seed)
    if not diffs:
        return {"difference": point, "ci95": [float("nan"), float("nan")], "p_b_not_worse": float("nan"),
                "n_boot": n_boot}
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": point, "ci95": [float(low), float(high)],
            "p_b_not_worse": float(np.mean(np.asarray(diffs) <= 0)), "n_boot": len(diffs)}


def precision_at_k(retrieved_labels: np.ndarray, query_labels: np.ndarray, ks: Sequence[int] = (1, 2, 5, 10)) -> dict:
    """Mean over queries of (hits in the top K) / K; a hit is a retrieved item whose label equals the query's."""
    retrieved = np.asarray(retrieved_labels)
    query = np.asarray(query_labels).reshape(-1, 1)
    hits = retrieved == query
    return {int(k): float(hits[:, :k].sum(axis=1).mean() / k) for k in ks if k <= retrieved.shape[1]}


def evaluation_summary(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], positive: str | None = None,
    n_boot: int = 1000, seed: int = 0,
) -> dict:
    """Accuracy, macro-F1, ROC AUC (per class, macro, or the positive class for a binary task) with 95% CIs."""
    y = np.asarray(y_true)
    pred = probs.argmax(axis=1)
    names = list(class_names)
    out: dict = {
        "n": int(len(y)),
        "n_per_class": {n: int((y == i).sum()) for i, n in enumerate(names)},
        "accuracy": bootstrap_ci(accuracy, y, pred, n_boot=n_boot, seed=seed).as_dict(),
        "macro_f1": bootstrap_ci(lambda a, b: macro_f1(a, b, list(range(len(names)))), y, pred,
                                 n_boot=n_boot, seed=seed).as_dict(),
        "per_class": per_class_report(y, pred, names),
        "confusion_matrix": {"classes": names, "rows_true_cols_pred": confusion(y, pred, len(names))},
    }
    auc_per = {}
    for i, name in enumerate(names):
        auc_per[name] = bootstrap_ci(lambda a, s, i=i: roc_auc_binary(a == i, s), y, probs[:, i],
                                     n_boot=n_boot, seed=seed).as_dict()
    out["roc_auc_per_class"] = auc_per
    valid = [v["value"] for v in auc_per.values() if not math.isnan(v["value"])]

    def macro_auc(a: np.ndarray, p: np.ndarray) -> float:
        return roc_auc_ovr(a, p, names)["macro"]

    out["roc_auc_macro"] = bootstrap_ci(macro_auc, y, probs, n_boot=n_boot, seed=seed).as_dict() if valid else None
    if positive is not None:
        if positive not in names:
            raise ValueError(f"--positive {positive!r} is not one of the classes {names}")
        out["positive_class"] = positive
        out["roc_auc"] = auc_per[positive]
    return out
