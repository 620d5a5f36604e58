"""MedFLIP against its ablations and baselines under the SAME wall-clock budget and the same data.

Trains, one after the other: (1) MedFLIP, mask 0.75 + SVD term; (2) MedFLIP without masking; (3) MedFLIP
without the SVD term (beta 0); (4) CLIP InfoNCE (label-matched pseudo-pairs, no masking); (5) the MedCLIP
semantic loss (no masking). Each is exported and evaluated on the patient-disjoint validation split:
zero-shot accuracy and pneumonia ROC AUC (95 % bootstrap CI), retrieval Precision@1/2/5/10 against a
class-balanced pool of labelled IU sentences from reports held out of training (--corpus-holdout), and the number
of images seen. Paired comparisons resample patients.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFIGS: dict[str, list[str]] = {
    "medflip (mask 0.75, SVD)": ["--loss", "medflip", "--mask-ratio", "0.75", "--beta", "0.1"],
    "medflip, no masking": ["--loss", "medflip", "--mask-ratio", "0", "--beta", "0.1"],
    "medflip, no SVD (beta 0)": ["--loss", "medflip", "--mask-ratio", "0.75", "--beta", "0"],
    "CLIP InfoNCE": ["--loss", "infonce", "--mask-ratio", "0"],
    "MedCLIP semantic loss": ["--loss", "medclip", "--mask-ratio", "0"],
}


def _strategy(name: str, ratio: str) -> list[str]:
    return ["--loss", "medflip", "--mask-ratio", ratio, "--beta", "0.1", "--mask-strategy", name]


# issue 14: which patches to mask (MedFLIP's random vs our readings of MLIP and XLIP), the first row is the reference
STRATEGY_CONFIGS: dict[str, list[str]] = {
    f"{name}, mask {ratio}": _strategy(name, ratio)
    for ratio in ("0.75", "0.5") for name in ("random", "integrity", "attention")
}

_MEDFLIP = ["--loss", "medflip", "--mask-ratio", "0.75", "--beta", "0.1"]
# issue 11: what the sampling scheme and the augmentation buy, each changed alone against the default model's
# recipe (first row); needs --extra-sources, and the runs carry their own --source-weights and --augment
DATA_CONFIGS: dict[str, list[str]] = {
    "sources 0.5/0.5, class-balanced, augmented": [*_MEDFLIP, "--source-weights", "0.5,0.5", "--augment"],
    "no augmentation": [*_MEDFLIP, "--source-weights", "0.5,0.5"],
    "sources by size": [*_MEDFLIP, "--source-weights", "size", "--augment"],
    "uniform image within source": [*_MEDFLIP, "--source-weights", "0.5,0.5", "--sample-within-source", "image",
                                    "--augment"],
}

SUITES: dict[str, dict[str, list[str]]] = {"losses": CONFIGS, "strategies": STRATEGY_CONFIGS, "data": DATA_CONFIGS}


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} … failed:\n{proc.stderr[-3000:]}")
    return proc


def run_one(name: str, extra: list[str], common: list[str], work: Path, val_dirs: dict[str, Path], corpus: str,
            n_boot: int, previous: dict | None = None) -> dict:
    """Train, export and evaluate one configuration on every validation folder (the first one is the row's
    headline); with `previous` (its row from an earlier results.json whose bundle still exists) only the
    evaluation is repeated."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    bundle = work / f"{slug}-bundle"
    if previous is not None:
        trained = {k: previous[k] for k in ("steps", "images_seen", "train_seconds")}
    else:
        out = work / slug
        proc = _run(["-m", "trainer", "pretrain", *common, *extra, "--out-dir", str(out)])
        done = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")][-1]
        batch = int(common[common.index("--batch-size") + 1])
        trained = {"steps": done["step"], "images_seen": done["step"] * batch, "train_seconds": done["elapsed_s"],
                   "mask_s_per_step": _mean_mask_seconds(proc.stdout)}
        _run(["-m", "medflip_core.cli", "export", str(out), str(bundle), "--no-bank"])
    per_source = {}
    for source, val_dir in val_dirs.items():
        per_image = work / f"{slug}-{source.lower()}-val-scores.csv"
        ev = json.loads(_run(["-m", "medflip_core.cli", "evaluate", str(val_dir), "--model", str(bundle), "--json",
                              "--positive", "PNEUMONIA", "--n-boot", str(n_boot), "--prompt", "NORMAL=No Finding",
                              "--prompt", "PNEUMONIA=Pneumonia", "--per-image", str(per_image)]).stdout)
        rr = json.loads(_run(["-m", "medflip_core.cli", "retrieval-eval", str(val_dir), "--corpus", corpus,
                              "--model", str(bundle), "--json"]).stdout)
        per_source[source] = {"accuracy": ev["accuracy"], "roc_auc": ev["roc_auc"], "n_val": ev["images"],
                              "precision_at_k": rr["precision_at_k"], "pool_size": rr["pool_size"],
                              "per_image_csv": str(per_image)}
    first = per_source[next(iter(val_dirs))]
    return {"name": name, "args": extra, **trained, **first, "sources": per_source}


def _mean_mask_seconds(stdout: str) -> float | None:
    """Mean seconds a step spent choosing its mask (scoring pass included), from the run's step events."""
    values = [e.get("mask_s") for e in (json.loads(x) for x in stdout.splitlines() if x.startswith("{"))
              if e.get("event") == "step"]
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def paired_against_first(rows: list[dict], positive: str = "PNEUMONIA", n_boot: int = 2000,
                         patient_pattern: str | None = None, source: str | None = None) -> list[dict]:
    """Pneumonia ROC AUC of the first run minus each other run's, paired bootstrap over the same patients (their
    ids read from the image file names, as the split reads them); `source` picks a validation folder's scores."""
    from medflip_core.data.image_folder import patient_id_from_name
    from medflip_core.evaluation.evaluate import read_per_image_csv
    from medflip_core.metrics import paired_bootstrap_difference, roc_auc_binary

    def load(row: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
        csv = row["sources"][source]["per_image_csv"] if source else row["per_image_csv"]
        paths, truth, classes, probs = read_per_image_csv(csv)
        order = np.argsort(paths)
        y = np.array([t == positive for t in truth])[order]
        return [paths[i] for i in order], y, probs[order, classes.index(positive)]

    ref_paths, y, ref_scores = load(rows[0])
    # resample patients, not images: a patient's images share their difficulty
    patients = np.array([patient_id_from_name(Path(p).name, patient_pattern) for p in ref_paths])
    out = []
    for row in rows[1:]:
        paths, y_other, scores = load(row)
        if paths != ref_paths or not np.array_equal(y, y_other):
            raise SystemExit(f"{row['name']} was not evaluated on the same images as {rows[0]['name']}")
        diff = paired_bootstrap_difference(roc_auc_binary, y, ref_scores, scores, n_boot=n_boot, groups=patients)
        out.append({"first": rows[0]["name"], "other": row["name"], "source": source, **diff})
    return out


def paired_table(pairs: list[dict]) -> str:
    lines = ["| validation set | comparison | Δ pneumonia ROC AUC (paired 95% CI, patients resampled) "
             "| share of bootstraps where the other is not worse |",
             "|---|---|---|---|"]
    for p in pairs:
        lo, hi = p["ci95"]
        lines.append(f"| {p.get('source') or ''} | {p['first']} − {p['other']} | {p['difference']:+.3f} "
                     f"({lo:+.3f} to {hi:+.3f}) | {p['p_b_not_worse']:.3f} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    head = ("| run | validation set | steps | images seen | train s | mask s/step | zero-shot acc "
            "| pneumonia ROC AUC (95% CI, patients) | P@1 | P@2 | P@5 | P@10 |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        sources = r.get("sources") or {"": r}
        mask_s = r.get("mask_s_per_step")
        for source, m in sources.items():
            auc, pk = m["roc_auc"], m["precision_at_k"]
            lines.append(f"| {r['name']} | {source} | {r['steps']} | {r['images_seen']:,} | {r['train_seconds']:.0f} "
                         f"| {'' if mask_s is None else f'{mask_s:.3f}'} | {m['accuracy']['value']:.3f} "
                         f"| {auc['value']:.3f} ({auc['ci95'][0]:.3f}–{auc['ci95'][1]:.3f}) | {pk['1']:.3f} "
                         f"| {pk['2']:.3f} | {pk['5']:.3f} | {pk['10']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from medflip_core.resources import default_shared_data

    parser = argparse.ArgumentParser(prog="medflip bench ablation", description=__doc__)
    data = default_shared_data()
    parser.add_argument("--images", default=str(data / "cxr-pneumonia-kermany" / "train"))
    parser.add_argument("--corpus", default=str(data / "iu-xray-reports" / "NLMCXR_reports.tgz"))
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="per run, wall clock")
    parser.add_argument("--short", action="store_true", help="smoke run: 1.5 min each, 600 images, small eval")
    parser.add_argument("--work", default="runs/ablation")
    parser.add_argument("--class-map", help="JSON: class folder -> label names (passed to split and training)")
    parser.add_argument("--patient-pattern", help="regex, group 1 = patient id in a file name")
    parser.add_argument("--corpus-holdout", type=float, default=0.15,
                        help="share of reports held out of training; retrieval is measured on them")
    parser.add_argument("--extra-sources", help="a label CSV (e.g. the NIH sample) added to the training images, "
                                                "half of every batch (its validation patients stay out)")
    parser.add_argument("--suite", choices=sorted(SUITES), default="losses",
                        help="losses: MedFLIP vs its ablations and baselines; strategies: random vs integrity vs "
                             "attention masking at 0.75 and 0.5; data: the source weights, the class balance and "
                             "the augmentation, each changed alone (needs --extra-sources)")
    parser.add_argument("--equal-steps", action="store_true",
                        help="the first run trains for the budget, every other run for exactly its number of "
                             "steps (no time limit): equal steps instead of equal wall-clock")
    parser.add_argument("--steps", type=int, help="every run trains for exactly this many steps (no time limit)")
    parser.add_argument("--augment", action="store_true", help="train-only radiograph augmentation in every run")
    parser.add_argument("--only", nargs="*", help="names (prefixes) of the runs to do")
    parser.add_argument("--reuse", action="store_true",
                        help="re-evaluate the runs of an earlier results.json in --work instead of training again")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    budget = 1.5 if args.short else args.budget_minutes
    common = ["--images", args.images, "--corpus", args.corpus, "--budget-minutes", str(budget),
              "--batch-size", "32", "--eval-every", "0", "--checkpoint-every", "100", "--val-fraction", "0.15",
              "--seed", "0", "--corpus-holdout", str(args.corpus_holdout)]
    if args.suite == "data":
        if not args.extra_sources or args.augment:
            parser.error("--suite data needs --extra-sources and sets --augment per run (do not pass it)")
        common += ["--extra-sources", args.extra_sources]
    elif args.extra_sources:
        common += ["--extra-sources", args.extra_sources, "--source-weights", "0.5,0.5"]
    if args.augment:
        common.append("--augment")
    if args.short:
        common += ["--max-images", "600", "--max-sentences", "2000"]
    # the same split as training: same seed, fraction, class map and patient pattern (--max-images subsets the
    # training side only, after this split, so the validation patients below are never trained on)
    mapping = []
    if args.class_map:
        mapping += ["--class-map", args.class_map]
    if args.patient_pattern:
        mapping += ["--patient-pattern", args.patient_pattern]
    common += mapping
    _run(["-m", "medflip_core.cli", "split", args.images, str(work / "split"), "--val-fraction", "0.15",
          "--seed", "0", *mapping])
    val_dirs = {"Kermany": work / "split" / "val"}
    if args.extra_sources:  # the patients of the extra source that training holds out (same fraction and seed)
        from medflip_core.data.label_csv import held_out_class_folder

        val_dirs["NIH"] = held_out_class_folder(args.extra_sources, ["No Finding", "Pneumonia"], 0.15, 0,
                                                work / "extra-val", {"No Finding": "NORMAL", "Pneumonia": "PNEUMONIA"})
    rows = []
    started = time.time()
    earlier = {}
    training_seconds = 0.0
    if args.reuse:
        previous = json.loads((work / "results.json").read_text())
        budget = previous["budget_minutes_per_run"]
        training_seconds = previous["total_seconds"]
        earlier = {r["name"]: r for r in previous["rows"]}
    for name, extra in SUITES[args.suite].items():
        if args.only and not any(name.lower().startswith(o.lower()) for o in args.only):
            continue
        reused = earlier.get(name)
        run_common, steps = common, args.steps
        if args.equal_steps and rows:  # the reference run's steps, with the time limit lifted
            steps = rows[0]["steps"]
        if steps:
            at = run_common.index("--budget-minutes")
            run_common = [*run_common[:at], *run_common[at + 2:], "--max-steps", str(steps)]
        limit = f"{steps} steps" if steps else f"{budget} min"
        print(f"{'evaluating' if reused else 'training'}: {name} ({limit})…", file=sys.stderr)
        rows.append(run_one(name, extra, run_common, work, val_dirs, args.corpus, 300 if args.short else 1000,
                            reused))
    pairs = [pair for source in val_dirs for pair in
             paired_against_first(rows, patient_pattern=args.patient_pattern, source=source)] if len(rows) > 1 else []
    sets = "; ".join(f"{k}: {v}" for k, v in val_dirs.items())
    result = {"data_set": f"held-out patients ({sets}); retrieval pool from the IU reports held out of training",
              "suite": args.suite,
              "budget": "equal steps" if (args.equal_steps or args.steps) else "equal wall-clock",
              "budget_minutes_per_run": budget, "short": args.short,
              "total_seconds": round(training_seconds + time.time() - started), "rows": rows, "paired": pairs}
    (work / "results.json").write_text(json.dumps(result, indent=2))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(f"{result['data_set']}; {result['budget']}, {budget} min of training for the first run")
        print(table(rows))
        if pairs:
            print()
            print(paired_table(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
