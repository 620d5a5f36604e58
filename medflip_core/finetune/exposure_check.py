"""Can a classifier's labels be read from film exposure alone? A shortcut check beside its validation figures.

Each film's exposure (imaging.exposure: mean and spread of the model input, two numbers) depends on the machine,
the protocol, portable vs departmental films and the patient's size. When one class was filmed differently from
the other, a classifier can score the acquisition instead of the finding, and it will fail on a site that films
both alike. So every classifier the probe or the labelling workspace makes also fits a logistic regression on the
two exposure numbers alone, on the same training patients, and reports its validation ROC AUC (95 % CI by the
patient bootstrap) beside the classifier's.

A class is flagged when exposure alone separates it on the validation patients beyond chance: the lower end of
its CI is above 0.5. That is a reason to look, not a verdict: exposure can also follow the finding itself
(a large effusion whitens the film), which is why the message names both readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.finetune.validation import MIN_VAL_PATIENTS_PER_CLASS, widen_ci
from medflip_core.imaging import load_image
from medflip_core.imaging.exposure import film_exposure
from medflip_core.imaging.preprocess import PreprocessConfig
from medflip_core.metrics import bootstrap_ci, roc_auc_binary

if TYPE_CHECKING:
    from medflip_core.inference.classifier import Classifier

CHANCE = 0.5


def exposure_of_files(paths: Sequence[Path], pre: PreprocessConfig | None = None) -> np.ndarray:
    """(n, 2) exposure numbers of image files, read once more (a NaN row for a file that cannot be read now)."""
    out = np.full((len(paths), 2), np.nan)
    for i, path in enumerate(paths):
        try:
            out[i] = film_exposure(load_image(path), pre)
        except MedflipError:
            continue
    return out


def _fit_scores(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray) -> np.ndarray:
    """Validation scores of a class-balanced logistic regression on the standardised exposure numbers."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    clf.fit((x_train - mean) / std, y_train)
    return clf.decision_function((x_val - mean) / std)


def exposure_check(exp_train: np.ndarray, ind_train: np.ndarray, exp_val: np.ndarray, ind_val: np.ndarray,
                   val_patients: list[str], classes: list[str], model_auc: dict[str, float],
                   positive: int | None = None, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """Per class (one vs the rest; of two classes, only `positive` when given): exposure-only validation ROC AUC
    with its patient-bootstrap CI, beside the classifier's; `flagged` classes and a message for a person. Films
    without exposure numbers (NaN rows) are left out. None when no class has both outcomes on both sides."""
    exp_train, exp_val = np.asarray(exp_train, np.float64), np.asarray(exp_val, np.float64)
    keep_tr, keep_va = np.isfinite(exp_train).all(axis=1), np.isfinite(exp_val).all(axis=1)
    exp_train, ind_train = exp_train[keep_tr], np.asarray(ind_train)[keep_tr]
    exp_val, ind_val = exp_val[keep_va], np.asarray(ind_val)[keep_va]
    groups = np.asarray(val_patients)[keep_va]
    checked = [positive] if positive is not None and len(classes) == 2 else range(len(classes))
    per_class: dict[str, dict] = {}
    for j in checked:
        name = classes[j]
        y_tr, y_va = ind_train[:, j] > 0.5, ind_val[:, j] > 0.5
        if y_tr.all() or not y_tr.any() or y_va.all() or not y_va.any():
            continue
        scores = _fit_scores(exp_train, y_tr.astype(int), exp_val)
        ci = bootstrap_ci(roc_auc_binary, y_va, scores, n_boot=n_boot, seed=seed, groups=groups).as_dict()
        # as the classifier's own figures: under MIN_VAL_PATIENTS_PER_CLASS patients on a side (or a bootstrap
        # that could not vary) the CI is widened to the exact binomial interval, so a handful of patients cannot
        # flag a class
        pos, neg = len(set(groups[y_va])), len(set(groups[~y_va]))
        ci = widen_ci(ci, min(pos, neg), min(pos, neg) < MIN_VAL_PATIENTS_PER_CLASS)
        per_class[name] = {"roc_auc": round(ci["value"], 4), "ci95": [round(float(b), 4) for b in ci["ci95"]],
                           "patients": pos, "negative_patients": neg, "classifier_roc_auc": model_auc.get(name),
                           **({"widened": ci["widened"]} if "widened" in ci else {})}
    if not per_class:
        return None
    flagged = [c for c, v in per_class.items() if v["ci95"][0] > CHANCE]
    return {"features": "each film's mean and spread of its 32 x 32 model input (two numbers)",
            "per_class": per_class, "flagged": flagged, "headline": exposure_headline(per_class, flagged),
            "message": exposure_message(per_class, flagged)}


def check_classifier(exp_train: np.ndarray, ind_train: np.ndarray, exp_val: np.ndarray, ind_val: np.ndarray,
                     val_patients: list[str], classifier: Classifier, figures: dict, n_boot: int = 1000,
                     seed: int = 0) -> dict | None:
    """`exposure_check` for a calibrated classifier beside its validation figures (calibrate_on_validation's): its
    classes, its operating point and its per-class ROC AUC. The probe, the labelling workspace and tower
    fine-tuning all call this."""
    return exposure_check(exp_train, ind_train, exp_val, ind_val, val_patients, classifier.classes,
                          {c: v["roc_auc"]["value"] for c, v in figures["per_class"].items()},
                          classifier.operating_point, n_boot, seed)


def flagged_warnings(check: dict | None) -> list[str]:
    """The check's message as a job's warning, when it flags a class (none otherwise)."""
    return [check["message"]] if check and check["flagged"] else []


def _auc_text(v: dict) -> str:
    return f"{v['roc_auc']:.2f} [{v['ci95'][0]:.2f}–{v['ci95'][1]:.2f}]"


def exposure_headline(per_class: dict, flagged: list[str]) -> str:
    """One line for a results view."""
    shown = flagged or list(per_class)
    what = ", ".join(f"{c} {_auc_text(per_class[c])}" for c in shown)
    if flagged:
        return f"Film exposure alone separates {what} (ROC AUC on the validation patients)."
    if any("widened" in v for v in per_class.values()):
        return (f"Film exposure alone: too few validation patients to tell whether it separates the classes "
                f"({what}, CI widened).")
    return f"Film exposure alone does not separate the classes beyond chance ({what})."


def exposure_message(per_class: dict, flagged: list[str]) -> str:
    """The sentence for the printed summary, the model card and the app."""
    if not flagged:
        return exposure_headline(per_class, flagged) + (
            " A logistic regression on each film's brightness and contrast alone, fitted on the same training "
            "patients, is not clearly above chance on the validation patients.")
    parts = []
    for c in flagged:
        v = per_class[c]
        model = v.get("classifier_roc_auc")
        parts.append(f"{c}: ROC AUC {_auc_text(v)}" + (f", the classifier {model:.2f}" if model is not None else ""))
    return ("Film exposure alone (each film's brightness and contrast, two numbers) separates the labels on the "
            f"validation patients: {'; '.join(parts)}. Either the finding changes the film's density, or the "
            "classes were filmed differently (another machine, protocol, portable films, the patients' size); in "
            "the second case the classifier may be reading the acquisition and will not carry to a site that "
            "films both classes alike. Check where each class's films come from before trusting it elsewhere.")
