"""The probe's figures: wall time of a first run (empty embedding cache) and of a second run (from the cache),
the probe's validation ROC AUC for one class with a patient-level CI, and the base model's zero-shot AUC on the
SAME validation images beside it, with a paired patient-level bootstrap of the difference.

    medflip bench probe [--data ../shared/data/cxr-nih-adult/labels.csv] [--labels "No Finding,Pneumonia"]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from medflip_core.bundles.bundle import sha256_file
from medflip_core.bundles.model_store import resolve_model
from medflip_core.events import EventWriter
from medflip_core.finetune.dataset import loose_key
from medflip_core.finetune.probe import ProbeConfig, run_probe
from medflip_core.inference.engine import Engine
from medflip_core.metrics import bootstrap_ci, paired_bootstrap_difference, roc_auc_binary
from medflip_core.resources import default_shared_data, resources_dir


def base_held_out_patients(engine: Engine, data: str) -> set[str] | None:
    """The patients of label CSV `data` that the base model held out of its pre-training (None when it never
    trained on that file): the probe is then validated on exactly them, patients neither model has seen."""
    from medflip_core.data.label_csv import validation_patients

    provenance = engine.bundle.manifest.get("provenance") or {}
    cfg = provenance.get("training_config") or {}
    target = Path(data).resolve()
    recorded_hashes = set((provenance.get("data_sha256") or {}).values())
    for src in cfg.get("extra_sources") or []:
        candidates = [Path(src)] if Path(src).is_absolute() else [Path.cwd() / src, resources_dir().parent / src]
        if "shared/data/" in Path(src).as_posix():  # the shared data, wherever this checkout finds it
            candidates.append(default_shared_data() / Path(src).as_posix().split("shared/data/", 1)[1])
        same_file = any(c.is_file() and c.resolve() == target for c in candidates)
        same_name = any(c.name == target.name and c.parent.name == target.parent.name for c in candidates)
        # a copy elsewhere counts when its content is the file the model recorded training on
        same_content = same_name and target.is_file() and sha256_file(target) in recorded_hashes
        if same_file or same_content:
            return validation_patients(target, float(cfg["val_fraction"]), int(cfg.get("seed", 0)))
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(default_shared_data() / "cxr-nih-adult" / "labels.csv"))
    parser.add_argument("--image-root")
    parser.add_argument("--labels", default="No Finding,Pneumonia")
    parser.add_argument("--positive", default="Pneumonia")
    parser.add_argument("--base", help="base model (default: the bundled medflip-default)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--out", help="keep the classifier bundle here (default: a temporary folder)")
    parser.add_argument("--tower-modes", default="", help='also fine-tune the tower ("partial,full") through '
                        "medflip finetune, validated on the same patients, and compare each with zero-shot")
    parser.add_argument("--tower-minutes", type=float, default=10.0, help="time budget of each tower run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]

    held_out = base_held_out_patients(Engine(resolve_model(args.base)), args.data)
    with tempfile.TemporaryDirectory(prefix="medflip-probe-bench-") as tmp:
        cfg = ProbeConfig(images=args.data, image_root=args.image_root, labels=labels, base=args.base,
                          out=args.out or str(Path(tmp) / "bundle"), overwrite=bool(args.out),
                          val_fraction=args.val_fraction, seed=args.seed, n_boot=args.n_boot,
                          val_patients=sorted(held_out) if held_out else None,
                          cache_dir=str(Path(tmp) / "cache"), command="medflip bench probe")
        t0 = time.perf_counter()
        first = run_probe(cfg, EventWriter(enabled=False))
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = run_probe(ProbeConfig(**{**cfg.to_dict(), "out": str(Path(tmp) / "again"), "overwrite": True}),
                           EventWriter(enabled=False))
        second_s = time.perf_counter() - t0
        towers = {mode: tower_run(args, mode, first.val_set, Path(tmp)) for mode in
                  (m.strip() for m in args.tower_modes.split(",")) if mode}

    val = first.val_set
    classes = first.classifier.classes
    positive = next(c for c in classes if loose_key(c) == loose_key(args.positive))
    pos_index = classes.index(positive)
    y = val.indicator()[:, pos_index]
    groups = np.asarray(val.patients)
    probe_score = first.classifier.probabilities(first.val_embeddings)[:, pos_index]
    engine = Engine(resolve_model(args.base))
    zero_shot = engine.classify_embeddings(first.val_embeddings, labels)[:, pos_index]
    probe_auc = bootstrap_ci(roc_auc_binary, y, probe_score, n_boot=args.n_boot, groups=groups).as_dict()
    zs_auc = bootstrap_ci(roc_auc_binary, y, zero_shot, n_boot=args.n_boot, groups=groups).as_dict()
    diff = paired_bootstrap_difference(roc_auc_binary, y, probe_score, zero_shot, n_boot=args.n_boot,
                                       groups=groups)
    result = {
        "data_set": (f"the patients of {val.source} that the base model held out of pre-training"
                     if held_out else f"validation split of {val.source} (patient-disjoint, fraction "
                     f"{args.val_fraction}, seed {args.seed})"),
        "validation_images": len(val), "validation_patients": len(set(val.patients)),
        "positive": positive, "positives": int(y.sum()), "classes": classes,
        "first_run_s": round(first_s, 1), "second_run_s": round(second_s, 1),
        "first_run_embedded": first.embedded, "second_run_embedded": second.embedded,
        "skipped": len(first.skipped), "images": first.embedded + first.cached,
        "probe_roc_auc": probe_auc, "zero_shot_roc_auc": zs_auc, "zero_shot_labels": labels,
        "probe_minus_zero_shot": diff, "base_model": engine.bundle.name,
        "ci": "95 % percentile bootstrap over patients",
    }
    for mode, (score, seconds, steps) in towers.items():
        result[f"{mode}_roc_auc"] = bootstrap_ci(roc_auc_binary, y, score[:, pos_index], n_boot=args.n_boot,
                                                 groups=groups).as_dict()
        result[f"{mode}_minus_zero_shot"] = paired_bootstrap_difference(
            roc_auc_binary, y, score[:, pos_index], zero_shot, n_boot=args.n_boot, groups=groups)
        result[f"{mode}_minus_probe"] = paired_bootstrap_difference(
            roc_auc_binary, y, score[:, pos_index], probe_score, n_boot=args.n_boot, groups=groups)
        result[f"{mode}_run_s"], result[f"{mode}_steps"] = seconds, steps
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        def ci(m: dict) -> str:
            return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"

        print(f"probe from {engine.bundle.name} on {result['images']} images of {val.source}")
        print(f"  wall time: first run {first_s:.1f} s ({first.embedded} images embedded), second run "
              f"{second_s:.1f} s ({second.embedded} embedded, the rest from the cache)")
        print(f"  {result['data_set']}: {len(val)} images, {result['validation_patients']} patients, "
              f"{int(y.sum())} {positive}")
        print(f"  ROC AUC {positive} vs {', '.join(c for c in classes if c != positive)}: probe {ci(probe_auc)}, "
              f"zero-shot {ci(zs_auc)} (95 % CIs over patients)")
        print(f"  probe - zero-shot: {diff['difference']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}] "
              f"(paired bootstrap over {diff['resampled']}s, n={diff['n_boot']})")
        for mode in towers:
            d, dp = result[f"{mode}_minus_zero_shot"], result[f"{mode}_minus_probe"]
            print(f"  {mode} ({result[f'{mode}_run_s']:.0f} s, {result[f'{mode}_steps']} steps): ROC AUC "
                  f"{ci(result[f'{mode}_roc_auc'])}; - zero-shot {d['difference']:+.3f} [{d['ci95'][0]:+.3f}, "
                  f"{d['ci95'][1]:+.3f}]; - probe {dp['difference']:+.3f} [{dp['ci95'][0]:+.3f}, {dp['ci95'][1]:+.3f}]")
    return 0


def tower_run(args: argparse.Namespace, mode: str, val, tmp: Path) -> tuple[np.ndarray, float, int]:
    """`medflip finetune --mode MODE` on the same data and validation patients as the probe (the trainer runs in
    its own process); the tuned bundle's calibrated probabilities on the validation images, wall time, steps."""
    import subprocess

    from medflip_core.imaging import load_image
    from medflip_core.processes import medflip_command

    patients = tmp / "val-patients.txt"
    patients.write_text("\n".join(sorted(set(val.patients))) + "\n", encoding="utf-8")
    out = tmp / f"{mode}-bundle"
    cli = ["finetune", "--images", args.data, "--labels", args.labels, "--mode", mode, "--out", str(out),
           "--run-dir", str(tmp / f"{mode}-run"), "--val-patients", str(patients), "--seed", str(args.seed),
           "--budget-minutes", str(args.tower_minutes), "--n-boot", "200", "--json"]
    if args.base:
        cli += ["--base", args.base]
    if args.image_root:
        cli += ["--image-root", args.image_root]
    program, full = medflip_command(cli)
    t0 = time.perf_counter()
    proc = subprocess.run([program, *full], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"medflip finetune --mode {mode} failed:\n{proc.stderr[-3000:]}")
    done = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    engine = Engine(out)
    emb = engine.embed_images([load_image(p) for p in val.paths]).embedding
    return engine.classifier.probabilities(emb), round(seconds, 1), int(done["step"])


if __name__ == "__main__":
    raise SystemExit(main())
