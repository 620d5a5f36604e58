"""The figures of a classifier on a labelled set: per-class ROC AUC, sensitivity and specificity at the stored
thresholds (95 % CIs from a bootstrap that resamples PATIENTS), ROC curves, confusion matrix, calibration error.
Used for the validation figures a bundle carries and by `medflip evaluate` on a classifier bundle.
"""

from __future__ import annotations

import numpy as np

from medflip_core.finetune.calibration import (
    choose_thresholds,
    ece_summary,
    fit_calibration,
    fit_platt,
    prior_shrinkage,
)
from medflip_core.inference.classifier import Classifier, calibrated_probabilities, decide
from medflip_core.metrics import bootstrap_ci, exact_binomial_ci, expected_calibration_error, roc_auc_binary

CURVE_POINTS = 200

# Below this many patients on either side of a class (with it, and without it) a validation set cannot judge a
# classifier, and the job says so wherever it reports (events, printed summary, model card, the app):
# - a patient bootstrap of n patients has few distinct resamples; with perfect separation every resample gives
#   AUC 1.000, so its CI is 1.000-1.000 however few the patients. The exact binomial bound after n of n patients
#   right is 0.025 ** (1 / n): 0.40 for 4 patients, 0.69 for 10; below 10 the CI says almost nothing;
# - a calibration fit is a logistic regression (temperature: one parameter; Platt: two) whose rule of thumb is
#   about 10 events of the rarer outcome per parameter (Peduzzi et al. 1996; 5-9 per parameter, Vittinghoff and
#   McCulloch 2007, is the usual floor); on fewer patients, and on perfectly separated ones whatever their number,
#   the fit runs to its bound and gives 0 % / 100 %.
# So: below 10 the CIs are widened to the exact binomial interval over the patients and the calibration is
# refused (the head's own probabilities, capped by the prior shrinkage of finetune.calibration).
MIN_VAL_PATIENTS_PER_CLASS = 10


def _sensitivity(y: np.ndarray, d: np.ndarray) -> float:
    y = y.astype(bool)
    return float(d[y].mean()) if y.any() else float("nan")


def _specificity(y: np.ndarray, d: np.ndarray) -> float:
    y = y.astype(bool)
    return float((~d[~y]).mean()) if (~y).any() else float("nan")


def roc_points(y: np.ndarray, score: np.ndarray, max_points: int = CURVE_POINTS) -> dict:
    from sklearn.metrics import roc_curve

    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return {"fpr": [], "tpr": [], "threshold": []}
    fpr, tpr, thr = roc_curve(y, score)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    thr = np.where(np.isfinite(thr), thr, 1.0)
    return {"fpr": fpr[keep].round(5).tolist(), "tpr": tpr[keep].round(5).tolist(),
            "threshold": thr[keep].round(6).tolist()}


def patient_counts(indicator: np.ndarray, patients: list[str]) -> list[tuple[int, int]]:
    """Per class: (patients with an image of it, patients with an image without it)."""
    groups = np.asarray(patients)
    ind = np.asarray(indicator).astype(bool)
    return [(len(set(groups[ind[:, j]].tolist())), len(set(groups[~ind[:, j]].tolist())))
            for j in range(ind.shape[1])]


def small_set_note(classes: list[str], counts: list[tuple[int, int]], multi_label: bool,
                   minimum: int = MIN_VAL_PATIENTS_PER_CLASS) -> dict | None:
    """None when every class has `minimum` patients with it and without it; else what is too small, in words."""
    below = [c for c, (pos, neg) in zip(classes, counts, strict=True) if min(pos, neg) < minimum]
    if not below:
        return None
    if multi_label:
        said = "; ".join(f"{c} {pos} with it, {neg} without" for c, (pos, neg) in zip(classes, counts, strict=True)
                         if c in below)
    else:
        said = ", ".join(f"{c} {pos}" for c, (pos, _) in zip(classes, counts, strict=True))
    return {"minimum_patients_per_class": minimum, "classes": below,
            "patients": {c: {"with": pos, "without": neg} for c, (pos, neg) in zip(classes, counts, strict=True)},
            "message": f"Too few patients to judge this classifier ({said}; each class needs at least {minimum} "
                       "patients with it and without it): the figures are rough guesses and the 95 % CIs are "
                       "widened to the exact binomial interval over the patients.",
            "headline": f"Too few patients to judge this classifier ({said}; {minimum} needed per class): "
                        "rough figures, widened CIs"}


def widen_ci(ci: dict, patients: int, always: bool) -> dict:
    """A bootstrap CI widened to the exact binomial interval of its value over `patients` independent units, when
    the set is small (`always`) or the bootstrap could not vary (every resample the same value)."""
    value, (low, high) = ci["value"], ci["ci95"]
    if value != value or patients <= 0:
        return ci
    degenerate = low == high or low != low
    if not (always or degenerate):
        return ci
    lo, hi = exact_binomial_ci(value * patients, patients)
    if low == low:
        lo, hi = min(lo, low), max(hi, high)
    why = "few patients" if always else "the bootstrap did not vary"
    return {**ci, "ci95": [lo, hi], "ci95_bootstrap": [low, high],
            "widened": f"exact binomial over {patients} patients ({why})"}


def classifier_figures(probs: np.ndarray, indicator: np.ndarray, patients: list[str], classes: list[str],
                       thresholds: np.ndarray, multi_label: bool, n_boot: int = 1000, seed: int = 0,
                       positive: int | None = None) -> dict:
    """Everything a user needs to judge a classifier on one labelled set (`probs` calibrated, (N, K)).

    CIs: the patient bootstrap, widened to the exact binomial interval (AUC: over min(patients with, without)
    independent pairs; sensitivity: over the patients with the class; specificity: without) for a class below
    MIN_VAL_PATIENTS_PER_CLASS or wherever the bootstrap gives a zero-width interval."""
    groups = np.asarray(patients)
    # the classifier's one rule (inference.classifier.decide): sensitivity, specificity and the confusion matrix
    # are those of the decisions every view shows
    decisions = decide(probs, np.asarray(thresholds), multi_label, positive)
    if multi_label:
        cuts = dict(zip(classes, map(float, thresholds), strict=True))
    elif positive is not None and len(classes) == 2:
        t = float(thresholds[positive])
        cuts = {classes[positive]: t, classes[1 - positive]: 1.0 - t}
    else:
        cuts = {}
    counts = patient_counts(indicator, patients)
    small = small_set_note(classes, counts, multi_label)
    per_class = {}
    for j, name in enumerate(classes):
        y, p, d = indicator[:, j], probs[:, j], decisions[:, j]
        pos, neg = counts[j]
        few = small is not None and name in small["classes"]
        boot = {"n_boot": n_boot, "seed": seed, "groups": groups}
        per_class[name] = {
            "images": int(y.sum()), "patients": pos, "negative_patients": neg,
            "roc_auc": widen_ci(bootstrap_ci(roc_auc_binary, y, p, **boot).as_dict(), min(pos, neg), few),
            "threshold": cuts.get(name),  # None: exclusive classes decided by the top class
            "sensitivity": widen_ci(bootstrap_ci(_sensitivity, y, d, **boot).as_dict(), pos, few),
            "specificity": widen_ci(bootstrap_ci(_specificity, y, d, **boot).as_dict(), neg, few),
            "ece": expected_calibration_error(y, p),
            "roc_curve": roc_points(y, p),
        }
    if multi_label:
        confusion = {name: {"tn": int(((indicator[:, j] == 0) & ~decisions[:, j]).sum()),
                            "fp": int(((indicator[:, j] == 0) & decisions[:, j]).sum()),
                            "fn": int(((indicator[:, j] == 1) & ~decisions[:, j]).sum()),
                            "tp": int(((indicator[:, j] == 1) & decisions[:, j]).sum())}
                     for j, name in enumerate(classes)}
        confusion_entry = {"kind": "per label at its threshold", "labels": confusion}
    else:
        from medflip_core.metrics import confusion as confusion_matrix

        truth, pred = indicator.argmax(axis=1), decisions.argmax(axis=1)
        confusion_entry = {"kind": "true class (rows) x decided class (columns)", "classes": list(classes),
                           "rows_true_cols_pred": confusion_matrix(truth, pred, len(classes))}
    aucs = [v["roc_auc"]["value"] for v in per_class.values() if v["roc_auc"]["value"] == v["roc_auc"]["value"]]
    return {
        "images": int(len(probs)), "patients": len(set(patients)), "multi_label": multi_label,
        "ci": "95 % percentile bootstrap over patients (a patient's images are drawn together)",
        "n_boot": n_boot, "per_class": per_class,
        "macro_roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "ece": ece_summary(probs, indicator, multi_label),
        "ece_kind": "mean of per-label ECEs" if multi_label else "top-label ECE",
        "confusion": confusion_entry,
        "small_validation": small,
    }


def calibrate_on_validation(classes: list[str], multi_label: bool, weight: np.ndarray, bias: np.ndarray,
                            val_embeddings: np.ndarray, val_indicator: np.ndarray, val_patients: list[str],
                            n_boot: int = 1000, seed: int = 0) -> tuple[Classifier, dict]:
    """A fitted linear head -> the Classifier a bundle carries (calibration and thresholds fitted on the
    validation patients) and its validation figures. Any head on any image tower goes through here: the probe
    now, a fine-tuned tower's head at export."""
    val_logits = np.asarray(val_embeddings, dtype=np.float64) @ weight.T + bias
    counts = patient_counts(val_indicator, val_patients)
    calibration = fit_or_refuse_calibration(val_logits, val_indicator, multi_label, classes, counts)
    probs = calibrated_probabilities(val_logits, multi_label, calibration)
    thresholds = choose_thresholds(probs, val_indicator)
    classifier = Classifier(classes=list(classes), multi_label=multi_label, weight=weight, bias=bias,
                            calibration=calibration, thresholds=thresholds)
    figures = classifier_figures(probs, val_indicator, val_patients, classes, thresholds, multi_label,
                                 n_boot=n_boot, seed=seed, positive=classifier.operating_point)
    figures["decision_rule"] = classifier.rule_sentence()
    raw = calibrated_probabilities(val_logits, multi_label, {"method": "none"})
    figures["ece_uncalibrated"] = ece_summary(raw, val_indicator, multi_label)
    if figures["small_validation"] is not None:
        note = figures["small_validation"]
        note["calibration"] = calibration_sentence(classes, calibration)
        note["message"] += " " + note["calibration"]
        lows, highs = zip(*calibration["shrink"]["range"], strict=True)
        note["headline"] += (", not calibrated" if calibration.get("method") == "none" else "") + (
            f", probabilities held within {min(lows):.0%}–{max(highs):.0%}.")
    return classifier, figures


def fit_or_refuse_calibration(logits: np.ndarray, indicator: np.ndarray, multi_label: bool, classes: list[str],
                              counts: list[tuple[int, int]], minimum: int = MIN_VAL_PATIENTS_PER_CLASS) -> dict:
    """The calibration fitted on validation, refused (identity) for what has fewer than `minimum` patients on a
    side (multi-class: the one temperature, if any class has; multi-label: per label), and capped in every case
    by the prior shrinkage (finetune.calibration.prior_shrinkage)."""
    few = [min(pos, neg) < minimum for pos, neg in counts]
    if not any(few):
        calibration = fit_calibration(logits, indicator, multi_label)
    elif multi_label and not all(few):  # Platt per label: fitted where the label has the patients, identity else
        pairs = [(1.0, 0.0) if f else fit_platt(logits[:, j], indicator[:, j]) for j, f in enumerate(few)]
        calibration = {"method": "platt", "scale": [a for a, _ in pairs], "offset": [b for _, b in pairs],
                       "fitted_on": "validation", "refused": [c for c, f in zip(classes, few, strict=True) if f]}
    else:  # one temperature for all classes: refused if any class lacks the patients
        calibration = {"method": "none", "fitted_on": "validation", "refused": list(classes)}
    # the prior: the validation prevalence, Laplace-smoothed too (never 0 or 1, even for a label all images have)
    ind = np.asarray(indicator, dtype=np.float64)
    outcomes = 2 if multi_label else len(classes)
    prevalence = ((ind.sum(axis=0) + 1) / (len(ind) + outcomes)).tolist()  # multi-class: still sums to 1
    fewest = [min(pos, neg) for pos, neg in counts]
    shrink = prior_shrinkage(fewest if multi_label else min(fewest), prevalence, outcomes)
    calibration["shrink"] = shrink
    return calibration


def calibration_sentence(classes: list[str], calibration: dict) -> str:
    """What the calibration did, for a person (printed summary, model card, app)."""
    refused = calibration.get("refused") or []
    shrink = calibration.get("shrink") or {}
    cap = ", ".join(f"{c} {lo:.0%}–{hi:.0%}" for c, (lo, hi) in zip(classes, shrink.get("range", []), strict=True))
    if calibration.get("method") == "none" and refused:
        what = "Not calibrated (too few validation patients to fit it)"
    elif refused:
        what = f"Calibration refused for {', '.join(refused)} (too few validation patients)"
    else:
        what = f"Calibrated by {calibration.get('method')} scaling on the validation patients"
    return (what + ("; probabilities shrunk toward the validation prevalence as far as the patients warrant, so "
                    f"they stay within {cap}." if cap else "."))


def per_class_lines(per_class: dict) -> list[str]:
    """One line a class: validation ROC AUC with its patient-level CI, the threshold, sensitivity and specificity
    there (the same wording in the CLI and the app's results view)."""
    lines = []
    for name, m in per_class.items():
        auc = m["roc_auc"]
        widened = f", widened: {auc['widened']}" if auc.get("widened") else ""
        lines.append(f"{name}: ROC AUC {auc['value']:.3f} [{auc['ci95'][0]:.3f}–{auc['ci95'][1]:.3f}{widened}], "
                     + (f"threshold {m['threshold']:.3f}, " if m.get("threshold") is not None else "")
                     + f"sensitivity {m['sensitivity']['value']:.2f}, "
                     f"specificity {m['specificity']['value']:.2f}")
    return lines


def validation_summary(figures: dict) -> dict:
    """The validation figures without the curves (for the manifest and the events)."""
    per = {c: {k: v[k] for k in ("images", "patients", "negative_patients", "roc_auc", "threshold", "sensitivity",
                                 "specificity", "ece") if k in v}
           for c, v in figures["per_class"].items()}
    return {k: figures.get(k) for k in ("images", "patients", "ci", "n_boot", "macro_roc_auc", "ece", "ece_kind",
                                        "ece_uncalibrated", "data_set", "confusion", "small_validation",
                                        "decision_rule", "exposure_check")
            } | {"per_class": per}
