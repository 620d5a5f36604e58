"""The labelling loop simulated on labelled data: does the default order ("uncertainty": the least sure film among
the training patients, a fixed quarter of random picks for validation, patient diversity) need fewer labels than
a random order?

    medflip bench active [--data kermany,nih] [--seeds 3] [--json]

For each data set (the shared Kermany train folder, NORMAL vs PNEUMONIA; the shared NIH sample, No Finding vs
Pneumonia): a fixed TEST set of patients, never labelled, never validation: the patients the base model held out
of its pre-training (the bundled model pre-trained on 85 % of the patients of both sets; its 15 % are patients
neither the base model nor the head has seen), else 30 % of the patients (stratified by class); the other
patients form the folder being labelled. A simulated user answers with the data set's label; exactly as in the
app, the answers of the quarter of patients on the validation side (fixed by patient id) never train the head,
and the head (zero-shot prior + answers, `labelling.learner`) is refitted every REFIT_EVERY answers. Reported:
test ROC AUC of the head after 10, 20, 40, 80 and 160 answers (mean and range over the seeds), and the answers
needed until the test AUC first reaches the zero-shot AUC + 0.05 (checked at every refit, up to --max-labels).
The AUC is measured on the test patients, not on the loop's own small validation side.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from medflip_core.bundles.model_store import resolve_model
from medflip_core.data.patient_sides import is_validation_patient
from medflip_core.events import EventWriter
from medflip_core.finetune.dataset import LabelledSet, load_labelled, split_by_patient
from medflip_core.finetune.embedding_cache import EmbeddingCache, model_key
from medflip_core.finetune.probe import CancelFlag, default_cache_dir, embed_with_cache
from medflip_core.inference.engine import Engine
from medflip_core.labelling.job import REFIT_EVERY
from medflip_core.labelling.learner import fit_learner, head_from_prior, zero_shot_prior
from medflip_core.labelling.order import next_film
from medflip_core.metrics import roc_auc_binary
from medflip_core.resources import default_shared_data

CHECKPOINTS = (10, 20, 40, 80, 160)
GAIN = 0.05
DATA_SETS = {
    "kermany": ("cxr-pneumonia-kermany/train", None),
    "nih": ("cxr-nih-adult/labels.csv", ["No Finding", "Pneumonia"]),
}


def base_held_out(engine: Engine, name: str, source: Path) -> set[str] | None:
    """The patients of this data set that the base model held out of pre-training (None: it did not train on it)."""
    from medflip_core.bench.probe import base_held_out_patients
    from medflip_core.data.image_folder import index_image_folder, patient_split

    if name == "nih":
        return base_held_out_patients(engine, str(source))
    cfg = (engine.bundle.manifest.get("provenance") or {}).get("training_config") or {}
    if not any(Path(p).name == source.name and Path(p).parent.name == source.parent.name
               for p in cfg.get("images") or []):
        return None
    records = index_image_folder(source, patient_pattern=cfg.get("patient_pattern"))
    _, val = patient_split(records, float(cfg["val_fraction"]), int(cfg.get("seed", 0)))
    return {r.patient_id for r in val}


def _embed(engine: Engine, data: LabelledSet, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    cache = EmbeddingCache(cache_dir, model_key(engine.bundle))
    keys, _, _ = embed_with_cache(engine, data.paths, cache, EventWriter(enabled=False), CancelFlag(), None, 32)
    ok = np.array([k in cache.embeddings for k in keys])
    x = np.zeros((len(data), engine.bundle.embed_dim), dtype=np.float32)
    x[ok] = np.stack([cache.embeddings[k] for k, good in zip(keys, ok, strict=True) if good])
    return x, ok


def simulate(x: np.ndarray, y: np.ndarray, patients: list[str], test_x: np.ndarray, test_y: np.ndarray,
             prior, order: str, seed: int, max_labels: int, target: float, pos: int) -> dict:
    """One simulated labelling run; y is the (N, K) one-hot truth of the pool."""
    validation = [is_validation_patient(p, seed) for p in patients]
    answered: list[int] = []
    done = np.zeros(len(y), dtype=bool)
    head_probs = None

    def test_auc(head) -> float:
        z = head.logits(test_x)
        return roc_auc_binary(test_y[:, pos], z[:, pos] - z[:, 1 - pos])

    head = head_from_prior(prior)
    head_probs = head.probabilities(x)
    curve: dict[int, float] = {0: test_auc(head)}
    reached = None
    chosen_at = 0
    while len(answered) < max_labels:
        available = np.flatnonzero(~done)
        counts = Counter(patients[i] for i in answered)
        index, _how = next_film(order, available, patients, counts, len(answered), head_probs, False, seed,
                                validation)
        if index is None:
            break
        answered.append(index)
        done[index] = True
        if len(answered) % REFIT_EVERY == 0:
            train = [i for i in answered if not validation[i]]
            # as the app does (job.snapshot): the penalty is chosen again when the training answers have doubled
            reuse = head.strength if head.trained_on and len(train) < 2 * chosen_at else None
            if reuse is None and train:
                chosen_at = len(train)
            head = fit_learner(x[train], y[train], [patients[i] for i in train], prior, pool=x, strength=reuse)
            head_probs = head.probabilities(x)
            curve[len(answered)] = test_auc(head)
            if reached is None and curve[len(answered)] >= target:
                reached = len(answered)
    return {"curve": curve, "labels_to_target": reached, "validation_answers": sum(validation[i] for i in answered)}


def run_data_set(name: str, engine: Engine, args: argparse.Namespace, cache_dir: Path) -> dict:
    rel, labels = DATA_SETS[name]
    source = default_shared_data() / rel
    data = load_labelled(source, labels=labels)
    x, ok = _embed(engine, data, cache_dir)
    data = data.subset(np.flatnonzero(ok))
    x = x[ok]
    y = data.indicator()
    held_out = base_held_out(engine, name, source)
    if held_out:
        test_idx = np.array([i for i, p in enumerate(data.patients) if p in held_out])
        pool_idx = np.array([i for i, p in enumerate(data.patients) if p not in held_out])
        test_set = "the patients the base model held out of pre-training"
    else:
        pool_idx, test_idx = split_by_patient(data, args.test_fraction, args.split_seed)
        test_set = f"{args.test_fraction:.0%} of the patients (split seed {args.split_seed})"
    prior = zero_shot_prior(engine, ["No Finding", "Pneumonia"], False)
    classes = data.classes
    # the data set's class order -> the prior's (No Finding, Pneumonia)
    order = [next(i for i, c in enumerate(classes) if c.lower().replace("_", " ") in (want.lower(), alias))
             for want, alias in (("No Finding", "normal"), ("Pneumonia", "pneumonia"))]
    y = y[:, order]
    pos = 1
    test_x, test_y = x[test_idx], y[test_idx]
    z0 = prior.logits(test_x)
    zero_auc = roc_auc_binary(test_y[:, pos], z0[:, pos] - z0[:, 0])
    target = zero_auc + GAIN
    pool_patients = [data.patients[i] for i in pool_idx]
    runs: dict[str, list[dict]] = {}
    t0 = time.time()
    for strategy in ("uncertainty", "random"):
        runs[strategy] = [simulate(x[pool_idx], y[pool_idx], pool_patients, test_x, test_y, prior, strategy, seed,
                                   args.max_labels, target, pos) for seed in range(args.seeds)]
    summary = {}
    for strategy, rs in runs.items():
        at = {n: [r["curve"].get(n, float("nan")) for r in rs] for n in CHECKPOINTS if n <= args.max_labels}
        summary[strategy] = {
            "auc_at": {n: {"mean": float(np.nanmean(v)), "min": float(np.nanmin(v)), "max": float(np.nanmax(v))}
                       for n, v in at.items()},
            "labels_to_target": [r["labels_to_target"] for r in rs],
            "validation_answers_at_end": [int(r["validation_answers"]) for r in rs],
        }
    return {"data_set": name, "source": str(source), "test_set": test_set, "classes": ["No Finding", "Pneumonia"],
            "images": len(data), "patients": len(set(data.patients)),
            "pool_images": len(pool_idx), "pool_patients": len(set(pool_patients)),
            "test_images": len(test_idx), "test_patients": len({data.patients[i] for i in test_idx}),
            "test_positives": int(test_y[:, pos].sum()), "zero_shot_test_auc": zero_auc, "target_auc": target,
            "seeds": args.seeds, "max_labels": args.max_labels, "simulation_s": round(time.time() - t0, 1),
            "orders": summary}


def _fmt_reached(values: list) -> str:
    got = [v for v in values if v is not None]
    text = ", ".join(str(v) if v is not None else "not reached" for v in values)
    return f"{text} (median {int(np.median(got))})" if len(got) == len(values) else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench active", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="kermany,nih", help="comma-separated: kermany, nih")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-labels", type=int, default=200)
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--base", help="base model (default: the bundled medflip-default)")
    parser.add_argument("--cache-dir", help="embedding cache (default: the user data folder's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    engine = Engine(resolve_model(args.base))
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    results = []
    with threadpool_limits(1):
        for name in [d.strip() for d in args.data.split(",") if d.strip()]:
            if name not in DATA_SETS:
                raise SystemExit(f"unknown data set {name!r} (known: {', '.join(DATA_SETS)})")
            results.append(run_data_set(name, engine, args, cache_dir))
    if args.json:
        print(json.dumps({"base_model": engine.bundle.name, "refit_every": REFIT_EVERY, "results": results},
                         indent=2))
        return 0
    for r in results:
        print(f"{r['data_set']}: {r['pool_images']} films of {r['pool_patients']} patients to label; test "
              f"{r['test_images']} films of {r['test_patients']} patients ({r['test_positives']} Pneumonia); "
              f"zero-shot test AUC {r['zero_shot_test_auc']:.3f}, target {r['target_auc']:.3f}; "
              f"{r['seeds']} seeds, {r['simulation_s']} s")
        for strategy, s in r["orders"].items():
            aucs = "  ".join(f"{n}: {v['mean']:.3f} [{v['min']:.3f}-{v['max']:.3f}]" for n, v in s["auc_at"].items())
            print(f"  {strategy:11s} AUC after {aucs}")
            print(f"  {'':11s} labels to target: {_fmt_reached(s['labels_to_target'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
