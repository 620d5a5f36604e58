"""The figures of a classifier on a labelled set: per-class ROC AUC, sensitivity and specificity at the stored
thresholds (95 % CIs from a bootstrap that resamples PATIENTS), ROC curves, confusion matrix, calibration error.
Used for the validation figures a bundle carries and by `medflip evaluate` on a classifier bundle.
"""

from __future__ import annotations

import numpy as np

from medflip_core.finetune.calibration import choose_thresholds, ece_summary, fit_calibration
from medflip_core.finetune.classifier import Classifier, calibrated_probabilities
from medflip_core.metrics import bootstrap_ci, expected_calibration_error, roc_auc_binary

CURVE_POINTS = 200


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


def classifier_figures(probs: np.ndarray, indicator: np.ndarray, patients: list[str], classes: list[str],
                       thresholds: np.ndarray, multi_label: bool, n_boot: int = 1000, seed: int = 0) -> dict:
    """Everything a user needs to judge a classifier on one labelled set (`probs` calibrated, (N, K))."""
    groups = np.asarray(patients)
    decisions = probs >= thresholds
    per_class = {}
    for j, name in enumerate(classes):
        y, p, d = indicator[:, j], probs[:, j], decisions[:, j]
        per_class[name] = {
            "images": int(y.sum()), "patients": len(set(groups[y.astype(bool)].tolist())),
            "roc_auc": bootstrap_ci(roc_auc_binary, y, p, n_boot=n_boot, seed=seed, groups=groups).as_dict(),
            "threshold": float(thresholds[j]),
            "sensitivity": bootstrap_ci(_sensitivity, y, d, n_boot=n_boot, seed=seed, groups=groups).as_dict(),
            "specificity": bootstrap_ci(_specificity, y, d, n_boot=n_boot, seed=seed, groups=groups).as_dict(),
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

        truth, pred = indicator.argmax(axis=1), probs.argmax(axis=1)
        confusion_entry = {"kind": "true class (rows) x most probable class (columns)", "classes": list(classes),
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
    }


def calibrate_on_validation(classes: list[str], multi_label: bool, weight: np.ndarray, bias: np.ndarray,
                            val_embeddings: np.ndarray, val_indicator: np.ndarray, val_patients: list[str],
                            n_boot: int = 1000, seed: int = 0) -> tuple[Classifier, dict]:
    """A fitted linear head -> the Classifier a bundle carries (calibration and thresholds fitted on the
    validation patients) and its validation figures. Any head on any image tower goes through here: the probe
    now, a fine-tuned tower's head at export."""
    val_logits = np.asarray(val_embeddings, dtype=np.float64) @ weight.T + bias
    calibration = fit_calibration(val_logits, val_indicator, multi_label)
    probs = calibrated_probabilities(val_logits, multi_label, calibration)
    thresholds = choose_thresholds(probs, val_indicator)
    classifier = Classifier(classes=list(classes), multi_label=multi_label, weight=weight, bias=bias,
                            calibration=calibration, thresholds=thresholds)
    figures = classifier_figures(probs, val_indicator, val_patients, classes, thresholds, multi_label,
                                 n_boot=n_boot, seed=seed)
    raw = calibrated_probabilities(val_logits, multi_label, {"method": "none"})
    figures["ece_uncalibrated"] = ece_summary(raw, val_indicator, multi_label)
    return classifier, figures


def per_class_lines(per_class: dict) -> list[str]:
    """One line a class: validation ROC AUC with its patient-level CI, the threshold, sensitivity and specificity
    there (the same wording in the CLI and the app's results view)."""
    lines = []
    for name, m in per_class.items():
        auc = m["roc_auc"]
        lines.append(f"{name}: ROC AUC {auc['value']:.3f} [{auc['ci95'][0]:.3f}–{auc['ci95'][1]:.3f}], "
                     f"threshold {m['threshold']:.3f}, sensitivity {m['sensitivity']['value']:.2f}, "
                     f"specificity {m['specificity']['value']:.2f}")
    return lines


def validation_summary(figures: dict) -> dict:
    """The validation figures without the curves (for the manifest and the events)."""
    per = {c: {k: v[k] for k in ("images", "patients", "roc_auc", "threshold", "sensitivity", "specificity", "ece")}
           for c, v in figures["per_class"].items()}
    return {k: figures[k] for k in ("images", "patients", "ci", "n_boot", "macro_roc_auc", "ece", "ece_kind",
                                    "ece_uncalibrated", "data_set", "confusion")} | {"per_class": per}
