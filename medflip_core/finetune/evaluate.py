"""Evaluate a classifier bundle on an ImageFolder or a label CSV: the classifier's own classes, matched loosely
to the data's (folder `PNEUMONIA` = class `Pneumonia`), figures with patient-level CIs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter
from medflip_core.finetune.dataset import load_labelled, loose_key
from medflip_core.finetune.embedding_cache import EmbeddingCache, model_key
from medflip_core.finetune.probe import CancelFlag, default_cache_dir, embed_with_cache
from medflip_core.finetune.validation import classifier_figures
from medflip_core.inference.engine import Engine


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
    used = data.subset(readable)
    probs = clf.probabilities(np.stack([cache.embeddings[keys[i]] for i in readable]))
    figures = classifier_figures(probs, used.indicator(), used.patients, clf.classes, clf.thresholds,
                                 clf.multi_label, n_boot=n_boot, positive=clf.operating_point)
    figures["decision_rule"] = clf.rule_sentence()
    result = {"data_set": used.source, "model": engine.bundle.name, "classes": clf.classes,
              "data_classes": dict(zip(clf.classes, used.classes, strict=True)), "skipped": len(skipped),
              "skipped_examples": skipped[:5], "notes": used.notes, **figures}
    if positive is not None:
        match = [c for c in clf.classes if loose_key(c) == loose_key(positive)]
        if not match:
            raise MedflipError(f"--positive {positive!r} is not a class of {engine.bundle.name} "
                               f"({', '.join(clf.classes)})")
        result["positive_class"] = match[0]
        result["roc_auc"] = figures["per_class"][match[0]]["roc_auc"]
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


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
    lines.append(f"  calibration error ({r['ece_kind']}): {r['ece']:.3f}")
    if r.get("positive_class"):
        lines.append(f"  ROC AUC, positive class {r['positive_class']}: {_ci(r['roc_auc'])}")
    if r["skipped"]:
        lines.append(f"  skipped {r['skipped']} unreadable file(s), e.g. {r['skipped_examples'][0]}")
    return "\n".join(lines)
