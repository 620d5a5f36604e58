"""Evaluate a classifier bundle on an ImageFolder or a label CSV: the classifier's own classes, matched loosely
to the data's (folder `PNEUMONIA` = class `Pneumonia`), figures with patient-level CIs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter
from medflip_core.finetune.calibration import ece_summary
from medflip_core.finetune.dataset import load_labelled, loose_key
from medflip_core.finetune.embedding_cache import EmbeddingCache, model_key
from medflip_core.finetune.probe import CancelFlag, default_cache_dir, embed_with_cache
from medflip_core.finetune.validation import classifier_figures
from medflip_core.inference.classifier import Classifier
from medflip_core.inference.engine import Engine
from medflip_core.metrics import (
    accuracy,
    bootstrap_ci,
    ece_if_calibrated,
    evaluation_record,
    macro_f1,
    roc_auc_binary,
)


def evaluate_classifier(engine: Engine, source: str | Path, image_root: str | Path | None = None,
                        positive: str | None = None, n_boot: int = 1000, patient_pattern: str | None = None,
                        cache_dir: str | Path | None = None) -> dict:
    t0 = time.perf_counter()
    clf = engine.require_classifier()
    data = load_labelled(source, image_root=image_root, labels=clf.classes, patient_pattern=patient_pattern)
    cache = EmbeddingCache(cache_dir or default_cache_dir(), model_key(engine.bundle))
    keys, _, _ = embed_with_cache(engine, data.paths, cache, EventWriter(enabled=False), CancelFlag(), None, 16)
    readable = [i for i, k in enumerate(keys) if k in cache.embeddings]
    skipped = sorted({cache.failed.get(k, k) for k in keys if k not in cache.embeddings})
    if not readable:
        raise MedflipError(f"no readable images in {source}")
    positive_class = None
    if positive is not None:
        match = [c for c in clf.classes if loose_key(c) == loose_key(positive)]
        if not match:
            raise MedflipError(f"--positive {positive!r} is not a class of {engine.bundle.name} "
                               f"({', '.join(clf.classes)})")
        positive_class = match[0]
    used = data.subset(readable)
    probs = clf.probabilities(np.stack([cache.embeddings[keys[i]] for i in readable]))
    indicator = used.indicator()
    figures = classifier_figures(probs, indicator, used.patients, clf.classes, clf.thresholds,
                                 clf.multi_label, n_boot=n_boot, positive=clf.operating_point)
    per_class = figures["per_class"]
    overall = _overall_figures(clf, probs, indicator, np.asarray(used.patients), n_boot)
    operating = clf.operating_point
    return evaluation_record(  # the keys a zero-shot evaluation writes too (metrics.EVALUATION_KEYS)
        kind="classifier", model=engine.bundle.name, data_set=used.source, classes=clf.classes,
        data_classes=dict(zip(clf.classes, used.classes, strict=True)), label_texts=None,
        multi_label=clf.multi_label, decision_rule=clf.rule_sentence(),
        decision_rule_parameters={"calibration": clf.calibration.get("method"),
                                  "thresholds": clf.effective_thresholds(),
                                  "operating_point": None if operating is None else clf.classes[operating]},
        images=figures["images"], patients=figures["patients"],
        images_per_class={c: m["images"] for c, m in per_class.items()}, resampled="patients", n_boot=n_boot,
        **overall, roc_auc_per_class={c: m["roc_auc"] for c, m in per_class.items()},
        positive_class=positive_class, roc_auc=per_class[positive_class]["roc_auc"] if positive_class else None,
        best_threshold_accuracy=None, ece_kind=figures["ece_kind"], confusion=figures["confusion"],
        per_class=per_class, small_validation=figures["small_validation"], skipped=len(skipped),
        skipped_examples=skipped[:5], out_of_distribution=None, out_of_distribution_examples=None,
        notes=used.notes, seconds=round(time.perf_counter() - t0, 2))


def _overall_figures(clf: Classifier, probs: np.ndarray, indicator: np.ndarray, patients: np.ndarray,
                     n_boot: int) -> dict:
    """accuracy, macro_f1 (of the decisions; one class per image only), roc_auc_macro, ece (with the patient
    bootstrap CIs a zero-shot evaluation gives) and ece_if_calibrated, as metrics.EVALUATION_KEYS names them."""
    boot = {"n_boot": n_boot, "groups": patients}

    def macro_auc(y: np.ndarray, p: np.ndarray) -> float:
        aucs = [roc_auc_binary(y[:, j], p[:, j]) for j in range(y.shape[1])]
        aucs = [a for a in aucs if a == a]
        return float(np.mean(aucs)) if aucs else float("nan")

    out: dict = {"roc_auc_macro": bootstrap_ci(macro_auc, indicator, probs, **boot).as_dict(),
                 "ece": bootstrap_ci(lambda y, p: ece_summary(p, y, clf.multi_label), indicator, probs,
                                     **boot).as_dict(),
                 "accuracy": None, "macro_f1": None, "ece_if_calibrated": None}
    if not clf.multi_label:
        truth, decided = indicator.argmax(axis=1), clf.decisions(probs).argmax(axis=1)
        labels = list(range(len(clf.classes)))
        out["accuracy"] = bootstrap_ci(accuracy, truth, decided, **boot).as_dict()
        out["macro_f1"] = bootstrap_ci(lambda a, b: macro_f1(a, b, labels), truth, decided, **boot).as_dict()
        out["ece_if_calibrated"] = ece_if_calibrated(probs)
    return out


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}{' widened' if m.get('widened') else ''}]"


def format_classifier_evaluation(r: dict) -> str:
    lines = [f"classifier {r['model']} on {r['data_set']}: {r['images']} images, {r['patients']} patients "
             f"({r['seconds']} s); 95 % CIs resample patients"]
    if r.get("small_validation"):
        lines.append(f"  WARNING: {r['small_validation']['message']}")
    if r.get("decision_rule"):
        lines.append(f"  {r['decision_rule']}")
    for name, v in r["per_class"].items():
        lines.append(f"  {name:<20} n={v['images']} ({v['patients']} patients)  ROC AUC {_ci(v['roc_auc'])}  "
                     + (f"at threshold {v['threshold']:.3f}: " if v.get("threshold") is not None else "")
                     + f"sensitivity {_ci(v['sensitivity'])}, "
                     f"specificity {_ci(v['specificity'])}")
    conf = r["confusion"]
    if "rows_true_cols_pred" in conf:
        lines.append(f"  confusion ({conf['kind']}): " + "; ".join(
            f"{c}: {row}" for c, row in zip(conf["classes"], conf["rows_true_cols_pred"], strict=True)))
    else:
        lines.append("  confusion at thresholds: " + "; ".join(
            f"{c}: TP {m['tp']} FP {m['fp']} FN {m['fn']} TN {m['tn']}" for c, m in conf["labels"].items()))
    if r.get("accuracy"):
        lines.append(f"  accuracy of the decisions {_ci(r['accuracy'])}, macro-F1 {_ci(r['macro_f1'])}")
    lines.append(f"  macro ROC AUC {_ci(r['roc_auc_macro'])}")
    lines.append(f"  calibration error ({r['ece_kind']}): {_ci(r['ece'])}")
    if r.get("positive_class"):
        lines.append(f"  ROC AUC, positive class {r['positive_class']}: {_ci(r['roc_auc'])}")
    if r["skipped"]:
        lines.append(f"  skipped {r['skipped']} unreadable file(s), e.g. {r['skipped_examples'][0]}")
    return "\n".join(lines)
