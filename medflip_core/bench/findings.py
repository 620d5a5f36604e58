"""Zero-shot ROC AUC per finding on the NIH adult sample, as issue 32 counts it: nine NIH findings, each typed by its
NIH name as a researcher would type it, scored together in the Zero-shot tab's findings mode (each label against its
negative prompt, the bundle's own prompts and decision rule), the mean over the nine beside each finding.

    medflip bench findings [--model medflip-default] [--model OTHER ...] [--data labels.csv] [--json]

Patients are reported on two sides, never pooled: those the model held out of its pre-training (its validation
split of this CSV, read from the bundle's training config), and those it trained on, whose NIH findings were
training labels (mapped to the label space), so that side is optimistic. A model that never trained on the CSV has
every patient on the held-out side. Intervals resample patients. The sample was drawn for pneumonia vs no finding:
most films with another finding have pneumonia too, and half the films have no finding, so a score that only reads
how abnormal a film looks already does well here; the held-out side has 1 to 19 positive patients per finding.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from medflip_core.resources import default_shared_data

# NIH ChestX-ray14's findings that have a label-space name, pneumonia left out (the question every model answers)
NINE_FINDINGS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Infiltration", "Mass",
                 "Nodule", "Pneumothorax")
SAMPLE = "NIH ChestX-ray14 adult sample"


def finding_scores(engine, table) -> np.ndarray:
    """(N, 9) findings-mode probabilities of the nine findings typed together, for every film of the table."""
    from medflip_core.imaging import load_image
    from medflip_core.inference.zeroshot import AUTOMATIC, score_labels

    emb = engine.embed_images([load_image(p) for p in table.images]).embedding
    return score_labels(engine, emb, list(NINE_FINDINGS), kind=AUTOMATIC).probs


def _mean_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC AUC over the findings; NaN when a finding has no positive (or no negative) film."""
    from medflip_core.metrics import roc_auc_binary

    return float(np.mean([roc_auc_binary(truth[:, j], scores[:, j]) for j in range(truth.shape[1])]))


def side_figures(truth: np.ndarray, scores: np.ndarray, patients: np.ndarray, n_boot: int) -> dict:
    """Per finding and mean over the findings with a positive film on one set of patients; 95 % intervals resample
    patients (for the mean, only resamples where each of those findings has a positive patient count, and how many
    were skipped is kept)."""
    from medflip_core.metrics import bootstrap_ci, roc_auc_binary

    per = {}
    for j, name in enumerate(NINE_FINDINGS):
        y = truth[:, j]
        interval = bootstrap_ci(roc_auc_binary, y, scores[:, j], n_boot=n_boot, groups=patients).as_dict()
        per[name] = {"positive_patients": len(set(patients[y].tolist())), "positive_images": int(y.sum()),
                     **interval}
    counted = [j for j in range(truth.shape[1]) if 0 < truth[:, j].sum() < len(truth)]
    mean = (bootstrap_ci(_mean_auc, truth[:, counted], scores[:, counted], n_boot=n_boot, groups=patients).as_dict()
            if counted else {"value": float("nan"), "ci95": [float("nan")] * 2, "n_boot": n_boot, "skipped": 0})
    return {"patients": len(set(patients.tolist())), "images": len(patients), "per_finding": per, "mean": mean,
            "findings_in_mean": [NINE_FINDINGS[j] for j in counted]}


def measure(model: str | None, data: Path, n_boot: int = 1000, limit: int | None = None) -> dict:
    """Both patient sides of one model on the label CSV `data` (`limit`: that many rows spread over it)."""
    from medflip_core.bench.probe import base_held_out_patients
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.data.label_csv import read_label_csv
    from medflip_core.inference.engine import Engine

    engine = Engine(resolve_model(model), prefer_gpu=False)
    table = read_label_csv(data, multi_label=True)
    if limit and limit < len(table):  # rows spread over the file (NIH CSVs are sorted by finding)
        table = table.subset(np.unique(np.linspace(0, len(table) - 1, limit).round().astype(int)))
    missing = [f for f in NINE_FINDINGS if f not in table.classes]
    if missing:
        from medflip_core.errors import MedflipError

        raise MedflipError(f"{data.name} has no column for {', '.join(missing)}: an NIH-style label CSV is needed")
    truth = table.targets[:, [table.classes.index(f) for f in NINE_FINDINGS]] > 0
    scores = finding_scores(engine, table)
    patients = np.array(table.patients)
    held = base_held_out_patients(engine, str(data))
    held_out = np.ones(len(patients), bool) if held is None else np.array([p in held for p in patients])
    cfg = (engine.bundle.manifest.get("provenance") or {}).get("training_config") or {}
    sides = {"held_out": side_figures(truth[held_out], scores[held_out], patients[held_out], n_boot)}
    if (~held_out).any():
        sides["trained_on"] = side_figures(truth[~held_out], scores[~held_out], patients[~held_out], n_boot)
    how = ("it never trained on this file: every patient is new to it" if held is None else
           f"its validation split of this file ({float(cfg['val_fraction']):.0%}, seed {int(cfg.get('seed', 0))})")
    return {"model": engine.bundle.name, "created": str(engine.bundle.manifest.get("created") or ""),
            "model_path": str(engine.bundle.path), "data_set": SAMPLE,
            "data": str(data), "held_out_rule": how, "findings": list(NINE_FINDINGS),
            "mode": "findings, each present vs absent (typed together, the bundle's prompts and decision rule)",
            "n_boot": n_boot, "sides": sides}


def _interval(fig: dict) -> str:
    low, high = fig.get("ci95") or (float("nan"), float("nan"))
    if not np.isfinite(fig["value"]):
        return "  –  (no positive patient)"
    return f"{fig['value']:.3f} [{low:.3f}–{high:.3f}]" if np.isfinite(low) else f"{fig['value']:.3f} [–]"


def format_result(r: dict) -> str:
    made = f" (created {r['created'][:10]})" if r.get("created") else ""
    lines = [f"zero-shot per finding, {r['model']}{made} on the {r['data_set']} ({Path(r['data']).name}); {r['mode']}",
             f"  held-out patients: {r['held_out_rule']}; 95 % intervals over patients ({r['n_boot']} resamples)"]
    titles = {"held_out": "patients it held out of training",
              "trained_on": "patients it trained on (their findings were training labels: optimistic)"}
    for key, side in r["sides"].items():
        lines.append(f"  {titles[key]}: {side['patients']} patients, {side['images']} images")
        for name, fig in side["per_finding"].items():
            n = fig["positive_patients"]
            lines.append(f"    {name:<14s} {n:>3d} positive patient{'s' if n != 1 else ' '}   ROC AUC {_interval(fig)}")
        skipped = side["mean"].get("skipped", 0)
        note = f" ({skipped} resamples without a positive of some finding left out)" if skipped else ""
        n = len(side["findings_in_mean"])
        over = "the nine" if n == len(NINE_FINDINGS) else f"the {n} findings with a positive patient"
        lines.append(f"    mean over {over}: {_interval(side['mean'])}{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench findings", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model bundle (repeatable; default: medflip-default)")
    parser.add_argument("--data", default=str(default_shared_data() / "cxr-nih-adult" / "labels.csv"),
                        help="an NIH-style label CSV (default: the shared NIH adult sample)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--limit", type=int, help="only N rows spread over the CSV (a quick look)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(m, Path(args.data), args.n_boot, args.limit) for m in (args.model or [None])]
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=float)
        print()
    else:
        print("\n".join(format_result(r) for r in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
