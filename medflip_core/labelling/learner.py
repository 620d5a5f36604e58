"""The head that learns while a user labels: a linear head that starts AS the zero-shot classifier.

Zero-shot scoring with the bundle's decision rule is linear in the (L2-normalised) image embedding:
logits = x @ W0.T + b0, W0 and b0 read off `inference.zeroshot.rule_logits` (the class prompts' text embeddings,
the logit scale, the rule's bias, temperature and pairs mode). The learned head is W = W0 + dW, b = b0 + db, fitted
by class-balanced maximum likelihood (softmax for one class per film, one sigmoid per finding) with an L2 penalty
on dW only: with no labels it IS zero-shot, with a few it moves only as far as the labels pull it, with many it is
an ordinary probe. The penalty `strength` is chosen by patient-grouped cross-validation on the training labels
when each class has MIN_PATIENTS_FOR_CV patients there, else DEFAULT_STRENGTH. numpy + scipy, no torch.

`validation_point` gives one point of the live learning curve: ROC AUC on the validation patients with the
fine-tuning's small-data honesty (`finetune.validation.classifier_figures`: patient bootstrap, widened to the
exact binomial interval below 10 patients a side) and the zero-shot AUC on the same films beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medflip_core.inference.classifier import sigmoid, softmax
from medflip_core.inference.engine import Engine
from medflip_core.inference.zeroshot import (
    EXCLUSIVE,
    INDEPENDENT,
    negative_texts,
    rule_from_manifest,
    rule_logits,
)

STRENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # L2 on the standardised change from zero-shot
DEFAULT_STRENGTH = 100.0  # few labels: stay close to zero-shot (10 NIH labels: AUC 0.799 vs zero-shot 0.804)
MIN_PATIENTS_FOR_CV = 5


@dataclass(frozen=True)
class Prior:
    """The zero-shot classifier as a linear head on the normalised embedding."""

    classes: list[str]
    multi_label: bool
    weight: np.ndarray  # (K, D)
    bias: np.ndarray  # (K,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return _normalised(x) @ self.weight.T + self.bias


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def zero_shot_prior(engine: Engine, classes: list[str], multi_label: bool) -> Prior:
    """W0, b0 of the engine's zero-shot rule for these classes (findings: each against its negative prompt)."""
    from medflip_core.labeler.prompts import load_prompt_set

    rule = rule_from_manifest(engine.bundle.manifest)
    kind = INDEPENDENT if multi_label else EXCLUSIVE
    pos = engine.class_embeddings(classes)
    neg = None
    if rule.mode == "pairs" or kind == INDEPENDENT:
        neg = engine.embed_texts(negative_texts(classes, load_prompt_set().negative_template))
    if kind == INDEPENDENT:
        from medflip_core.inference.zeroshot import DecisionRule

        rule = DecisionRule("pairs", rule.bias, rule.temperature, rule.chosen_on)
    dim = pos.shape[1]
    at_zero = rule_logits(np.zeros((1, dim)), pos, neg, classes, rule, engine.logit_scale)[0]
    basis = rule_logits(np.eye(dim), pos, neg, classes, rule, engine.logit_scale) - at_zero
    return Prior(list(classes), multi_label, basis.T.copy(), at_zero.copy())


@dataclass(frozen=True)
class Head:
    classes: list[str]
    multi_label: bool
    weight: np.ndarray  # (K, D), applies to the L2-normalised embedding
    bias: np.ndarray
    strength: float
    trained_on: int  # films
    how: str  # how the strength was chosen

    def logits(self, x: np.ndarray) -> np.ndarray:
        return _normalised(x) @ self.weight.T + self.bias

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        return sigmoid(z) if self.multi_label else softmax(z)


def head_from_prior(prior: Prior) -> Head:
    return Head(prior.classes, prior.multi_label, prior.weight, prior.bias, math.inf, 0, "zero-shot (no labels yet)")


def _class_weights(y: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per film and output: balanced weights (a class's films weigh n / (K n_k); findings: per label side)."""
    n, k = y.shape
    if multi_label:
        pos = np.maximum(y.sum(axis=0), 1)
        neg = np.maximum(n - y.sum(axis=0), 1)
        return np.where(y > 0, n / (2 * pos), n / (2 * neg))
    counts = np.maximum(y.sum(axis=0), 1)
    return np.broadcast_to((y * (n / (k * counts))).sum(axis=1, keepdims=True), (n, k)).copy()


def _fit(x: np.ndarray, y: np.ndarray, prior: Prior, strength: float, center: np.ndarray, scale: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) on the normalised embedding; the change from the prior is fitted and penalised on standardised
    features (x - center) / scale: the films' embeddings lie close together (cosine 0.98-0.999), so a penalty on
    raw directions would hold the head at zero-shot whatever the labels say."""
    from scipy.optimize import minimize

    n, d = x.shape
    k = y.shape[1]
    base = x @ prior.weight.T + prior.bias
    xs = (x - center) / scale
    w = _class_weights(y, prior.multi_label)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        dw = theta[: k * d].reshape(k, d)
        db = theta[k * d:]
        z = base + xs @ dw.T + db
        if prior.multi_label:
            p = sigmoid(z)
            ll = -(w * (y * np.log(np.clip(p, 1e-12, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-12, 1)))).sum() / n
            g = w * (p - y) / n
        else:
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            wi = w[:, :1]
            ll = -(wi * (y * logp).sum(axis=1, keepdims=True)).sum() / n
            g = wi * (np.exp(logp) - y) / n
        value = ll + 0.5 * strength * float((dw * dw).sum())
        grad = np.concatenate([(g.T @ xs + strength * dw).ravel(), g.sum(axis=0)])
        return value, grad

    res = minimize(loss, np.zeros(k * d + k), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    dw = res.x[: k * d].reshape(k, d) / scale
    return prior.weight + dw, prior.bias + res.x[k * d:] - dw @ center


def _auc(y: np.ndarray, z: np.ndarray) -> float:
    from medflip_core.metrics import roc_auc_binary

    vals = [roc_auc_binary(y[:, j], z[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    vals = [v for v in vals if v == v]
    return float(np.mean(vals)) if vals else float("nan")


def _cv_strength(x: np.ndarray, y: np.ndarray, patients: list[str], prior: Prior, center: np.ndarray,
                 scale: np.ndarray) -> tuple[float, str]:
    groups = np.asarray(patients)
    per_class = [len(set(groups[y[:, j] > 0])) for j in range(y.shape[1])]
    if min(per_class) < MIN_PATIENTS_FOR_CV or len(set(patients)) < 2 * MIN_PATIENTS_FOR_CV:
        return DEFAULT_STRENGTH, (f"default strength {DEFAULT_STRENGTH} (fewer than {MIN_PATIENTS_FOR_CV} "
                                  "patients a class)")
    from sklearn.model_selection import GroupKFold

    folds = min(5, len(set(patients)))
    scores = {}
    for s in STRENGTHS:
        z = np.zeros_like(y, dtype=np.float64)
        for tr, te in GroupKFold(n_splits=folds).split(x, groups=groups):
            w, b = _fit(x[tr], y[tr], prior, s, center, scale)
            z[te] = x[te] @ w.T + b
        scores[s] = _auc(y, z)
    valid = {s: v for s, v in scores.items() if v == v}
    if not valid:
        return DEFAULT_STRENGTH, "default strength (cross-validation gave no AUC)"
    best = max(valid, key=lambda s: (round(valid[s], 3), s))  # ties: the stronger pull toward zero-shot
    return best, f"strength {best} by patient-grouped {folds}-fold cross-validation (AUC {valid[best]:.3f})"


def fit_learner(embeddings: np.ndarray, indicator: np.ndarray, patients: list[str], prior: Prior,
                choose_strength: bool = True, pool: np.ndarray | None = None, strength: float | None = None) -> Head:
    """The head on the training films' embeddings and their 0/1 indicator (N, K). `pool`: the embeddings of every
    film of the folder (labelled or not), whose mean and spread standardise the features (default: the training
    films'). `strength`: use this penalty (chosen earlier) instead of choosing one."""
    y = np.asarray(indicator, dtype=np.float64)
    if len(y) == 0 or (not prior.multi_label and int((y.sum(axis=0) > 0).sum()) < 2):
        # answers of one class only: a fit would call every film that class (a GUI walk saw "Pneumonia 100 %"
        # after four Pneumonia answers); zero-shot stays until a second class is answered
        return head_from_prior(prior)
    x = _normalised(embeddings)
    ref = _normalised(pool) if pool is not None and len(pool) > 1 else x
    center, scale = ref.mean(axis=0), ref.std(axis=0) + 1e-6
    if strength is not None:
        how = f"strength {strength} (chosen at an earlier refit)"
    elif choose_strength:
        strength, how = _cv_strength(x, y, patients, prior, center, scale)
    else:
        strength, how = DEFAULT_STRENGTH, f"default strength {DEFAULT_STRENGTH}"
    w, b = _fit(x, y, prior, strength, center, scale)
    if prior.multi_label:  # a finding answered only present (or only absent) so far keeps its zero-shot row
        one_sided = (y.sum(axis=0) == 0) | (y.sum(axis=0) == len(y))
        w[one_sided], b[one_sided] = prior.weight[one_sided], prior.bias[one_sided]
    return Head(prior.classes, prior.multi_label, w, b, strength, len(y), how)


def positive_index(classes: list[str], multi_label: bool) -> int | None:
    """The class whose AUC a two-class job reports (the one that is not No Finding); None: the macro AUC."""
    if multi_label or len(classes) != 2:
        return None
    from medflip_core.labeler.labels import normalise_label_name

    normal = [i for i, c in enumerate(classes) if normalise_label_name(c) == "No Finding"]
    return 1 - normal[0] if normal else 1


@dataclass(frozen=True)
class CurvePoint:
    labels: int  # answers given when the head was fitted
    train_films: int
    val_films: int
    val_patients: int
    auc: float
    ci95: tuple[float, float]
    zero_shot_auc: float
    note: str  # small-data warning, or ""
    what: str  # which AUC

    def as_dict(self) -> dict:
        return {"labels": self.labels, "train_films": self.train_films, "val_films": self.val_films,
                "val_patients": self.val_patients, "auc": self.auc, "ci95": list(self.ci95),
                "zero_shot_auc": self.zero_shot_auc, "note": self.note, "what": self.what}


def validation_point(head: Head, prior: Prior, x_val: np.ndarray, y_val: np.ndarray, val_patients: list[str],
                     labels_given: int, n_boot: int = 300) -> CurvePoint | None:
    """Validation ROC AUC (CI over patients, widened when few) of the head, and zero-shot's on the same films;
    None while some class has no validation film with and without it."""
    from medflip_core.finetune.validation import classifier_figures

    y = np.asarray(y_val)
    if len(y) == 0 or (y.sum(axis=0) == 0).any() or (y.sum(axis=0) == len(y)).any():
        return None
    probs = head.probabilities(x_val)
    figures = classifier_figures(probs, y, val_patients, head.classes, np.full(len(head.classes), 0.5),
                                 head.multi_label, n_boot=n_boot)
    pos = positive_index(head.classes, head.multi_label)
    zs = prior.logits(x_val)
    if pos is not None:
        name = head.classes[pos]
        auc = figures["per_class"][name]["roc_auc"]
        value, ci = auc["value"], tuple(auc["ci95"])
        zero = _auc(y[:, [pos]], zs[:, [pos]] - zs[:, [1 - pos]])
        what = f"ROC AUC of {name}"
    else:
        per = [figures["per_class"][c]["roc_auc"] for c in head.classes]
        value = figures["macro_roc_auc"]
        ci = (float(np.mean([a["ci95"][0] for a in per])), float(np.mean([a["ci95"][1] for a in per])))
        zero = _auc(y, zs)
        what = "macro ROC AUC (CI: mean of the per-class CIs)"
    small = figures.get("small_validation")
    return CurvePoint(labels_given, head.trained_on, len(y), len(set(val_patients)), float(value),
                      (float(ci[0]), float(ci[1])), zero, small["headline"] if small else "", what)
