"""Build the bundled default model from a finished training run: export, choose the zero-shot decision rule on
validation data of both sources, evaluate per source, write the model card from the manifest.

    .venv/bin/python -m trainer pretrain --config configs/default-model-v2.yaml     # in the background
    .venv/bin/python scripts/build_default_model.py runs/default-model-v2
    .venv/bin/python scripts/build_default_model.py --from-bundle   # re-choose and re-evaluate the shipped one

Validation data (never trained on; the same seed and fraction as training):
- Kermany: the patient-disjoint split of the training image folder, recreated with `medflip split`;
- NIH adult: the held-out patients of the label CSV (medflip_core.data.label_csv.validation_patients, the
  function the trainer uses to hold them out), pneumonia vs no finding.
Retrieval: the sentence pool comes from the IU reports held out of training (split by report, recorded in
the training config as corpus_holdout). Every figure in the card comes from manifest.json; the card is
regenerated from it by this script and never edited by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "resources" / "models" / "medflip-default"
LABELS = ["No Finding", "Pneumonia"]
FOLDERS = {"No Finding": "NORMAL", "Pneumonia": "PNEUMONIA"}
PROMPTS = ["--prompt", "NORMAL=No Finding", "--prompt", "PNEUMONIA=Pneumonia"]


def medflip(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"medflip {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def folder_digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(root).as_posix().encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def nih_validation_folder(csv_path: Path, val_fraction: float, seed: int, out: Path):
    """The NIH validation patients (pneumonia vs no finding) as an ImageFolder; and their multi-label table."""
    from medflip_core.data.label_csv import held_out_class_folder, read_label_csv, validation_patients

    held_out = validation_patients(csv_path, val_fraction, seed)
    everything = read_label_csv(csv_path, multi_label=True)
    everything = everything.subset([i for i, p in enumerate(everything.patients) if p in held_out])
    return held_out_class_folder(csv_path, LABELS, val_fraction, seed, out, FOLDERS), everything


def init_record(init_from: str | None) -> dict | None:
    """What a continued run started from: the weights' hash and, when a bundle manifest sits beside them, that
    model's name, date and training budget (the card states both budgets)."""
    if not init_from:
        return None
    from medflip_core.bundles.bundle import WEIGHTS
    from medflip_core.bundles.checkpoint_layout import MODEL_FILE

    path = Path(init_from)
    weights = path / WEIGHTS if path.is_dir() else path
    if path.is_dir() and not weights.is_file():
        weights = path / MODEL_FILE  # a checkpoint folder
    record = {"path": str(path), "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    manifest = (path if path.is_dir() else path.parent) / "manifest.json"
    if manifest.is_file():
        earlier = json.loads(manifest.read_text())
        prov = earlier.get("provenance", {})
        record.update({"name": earlier.get("name"), "created": earlier.get("created"),
                       "training_steps": prov.get("training_steps"),
                       "training_wall_seconds": prov.get("training_wall_seconds")})
    return record


def run_events(run: Path) -> tuple[dict, dict]:
    """The `start` and the last `done` event of a run (RUN.events.jsonl beside its folder); {} for one missing."""
    events_file = run.with_suffix(".events.jsonl")
    events = [json.loads(x) for x in events_file.read_text().splitlines() if x.startswith("{")] \
        if events_file.is_file() else []
    start = next((e for e in events if e["event"] == "start"), {})
    return start, next((e for e in reversed(events) if e["event"] == "done"), {})


def phase_record(run: Path) -> dict:
    """One training phase of the model (a run folder beside its RUN.events.jsonl): what it trained and for how
    long, for the card's list of phases."""
    config = json.loads((run / "config.json").read_text())
    done = run_events(run)[1]
    steps = done.get("step") or 0
    per_step = config["batch_size"] + ((config.get("unlabelled_batch_size") or config["batch_size"])
                                       if config.get("unlabelled") else 0)
    return {"run": run.name, "steps": steps, "wall_seconds": done.get("elapsed_s"),
            "image_size": config["model"]["image_size"], "clip_weight": config.get("clip_weight", 1.0),
            "mim_weight": config.get("mim_weight", 0.0), "mask_strategy": config.get("mask_strategy"),
            "mask_ratio": config.get("mask_ratio"),
            "batch_size": config["batch_size"], "images_seen": steps * per_step,
            "unlabelled": config.get("unlabelled") or [], "init_from": config.get("init_from")}


def previous_record(bundle: Path) -> dict:
    """The figures of the model this one replaces (its manifest), kept in the new card so a user sees what
    changed; measured on the same validation patients when both used the same seed and fractions."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    prov = manifest.get("provenance", {})
    ev = prov.get("evaluation", {})
    return {"name": manifest.get("name"), "created": manifest.get("created"),
            "checkpoint_step": prov.get("checkpoint_step"),
            "weights_sha256": hashlib.sha256((bundle / "weights.safetensors").read_bytes()).hexdigest(),
            "training_config_seed": prov.get("training_config", {}).get("seed"),
            "val_fraction": prov.get("training_config", {}).get("val_fraction"),
            "roc_auc_pneumonia": {k: ev[k]["roc_auc_pneumonia"] for k in ("Kermany", "NIH") if k in ev},
            "NIH_per_finding": {k: {"value": v["value"], "ci95": v["ci95"]}
                                for k, v in ev.get("NIH_per_finding", {}).get("per_finding", {}).items()}}


def fewshot_record(path: Path, k: int = 20, this_step: int | None = None, previous_step: int | None = None) -> dict:
    """The few-label benchmark (`medflip bench fewshot --json`) at k labelled patients per class: per task, each
    column's mean and spread over the draws, with the columns' sources (this model and the one it replaces named
    as such)."""
    data = json.loads(path.read_text())
    return {"k": k, "draws": data["draws"], "C": data["C"], "seed": data["seed"],
            "columns": _column_names(data, this_step, previous_step),
            "tasks": {task: {"patients": t["patients"],
                             "columns": {c: {"mean": v[str(k)]["mean"], "std": v[str(k)]["std"]}
                                         for c, v in t["columns"].items() if str(k) in v}}
                      for task, t in data["tasks"].items()}}


ABLATION_ARMS = {  # scripts/ablation_v4.sh's arms: what each changes in the recipe ("chosen")
    "no-unlabelled": "without the TBX11K films (the images without labels)",
    "mim0": "no reconstruction term (MIM weight 0, hence no images without labels)",
    "attention": "attention masking (our reading of XLIP's AttMIM) instead of random",
    "random-start": "from random weights instead of the reconstruction-only (MAE) checkpoint",
    "avg-pool": "the image embedding from the mean of the patch tokens instead of the class token",
    "svd0": "no SVD term on σ₁ (β 0): the soft-target contrastive loss alone",
    "mask50": "mask ratio 0.5 instead of 0.75",
    "lr-low": "a third of the image side's peak learning rate",
    "nih-pneumonia-only": "NIH's labels cut to Pneumonia / No Finding, so the NIH findings are new questions",
    "steps-x1.3": "the recipe for 1.3 times the steps: mask50's CPU time, to compare it at equal compute",
}


def _column_names(data: dict, this_step: int | None, previous_step: int | None) -> dict[str, str]:
    """Printed names of a few-label JSON's columns; this model and the one it replaces named as such."""
    names = {}
    for name, col in data["columns"].items():
        label = col["source"]
        if this_step is not None and label.endswith(f"(step {this_step})"):
            label = f"this model ({label})"
        elif previous_step is not None and label.endswith(f"(step {previous_step})"):
            label = f"the model it replaces ({label})"
        names[name] = label + (f" [{col['feature']}]" if col.get("feature") not in ("pixels", "embedding", "intensity")
                               else "")
    return names


def fewshot_curves_record(path: Path, this_step: int | None = None, previous_step: int | None = None) -> dict:
    """The few-label benchmark at every k it measured: per task and column, the mean AUC at each k."""
    data = json.loads(path.read_text())
    return {"ks": data["ks"], "draws": data["draws"], "C": data["C"], "seed": data["seed"],
            "columns": _column_names(data, this_step, previous_step),
            "tasks": {task: {"patients": t["patients"],
                             "columns": {c: {k: (e or {}).get("mean") for k, e in v.items()}
                                         for c, v in t["columns"].items()}}
                      for task, t in data["tasks"].items()}}


def ablation_record(path: Path, setting: str, k: int = 20) -> dict:
    """The ablation arms of one few-label JSON (columns from runs named ablation-v4-ARM), each arm's mean and its
    paired difference from the recipe ("chosen") over the same draws."""
    import numpy as np

    data = json.loads(path.read_text())
    arm_of = {}
    for name, col in data["columns"].items():
        run = col["source"].split("/")[0]
        if run.startswith("ablation-v4-") and col.get("feature") == "embedding":
            arm_of[name] = run[len("ablation-v4-"):]
    if "chosen" not in arm_of.values():
        raise SystemExit(f"{path}: no column of the ablation-v4-chosen run")
    unknown = sorted(set(arm_of.values()) - set(ABLATION_ARMS) - {"chosen"})
    if unknown:
        raise SystemExit(f"{path}: arms without a description in ABLATION_ARMS: {', '.join(unknown)}")
    base_col = next(c for c, a in arm_of.items() if a == "chosen")
    tasks = {}
    for task, t in data["tasks"].items():
        base = np.asarray(t["columns"][base_col][str(k)]["aucs"])
        row = {"chosen": {"mean": float(base.mean())}}
        if (pixels := t["columns"].get("pixels", {}).get(str(k))) is not None:
            row["pixels"] = {"mean": float(pixels["mean"])}
        for col, arm in arm_of.items():
            if arm != "chosen":
                aucs = np.asarray(t["columns"][col][str(k)]["aucs"])
                row[arm] = {"mean": float(aucs.mean()), "delta": float((aucs - base).mean()),
                            "ahead": int((aucs > base).sum())}
        tasks[task] = row
    arms = {"chosen": "this model's recipe", **{a: ABLATION_ARMS[a] for a in arm_of.values() if a != "chosen"}}
    return {"setting": setting, "k": k, "draws": data["draws"], "base": "chosen", "arms": arms, "tasks": tasks}


def findings_record(path: Path) -> dict:
    """`medflip bench findings --json` of this model (its first entry), for the card: each side's per-finding
    ROC AUC with its positive patients, and the mean."""
    run = json.loads(path.read_text())[0]
    return {"data_set": run["data_set"], "held_out_rule": run["held_out_rule"], "mode": run["mode"],
            "sides": {side: {"patients": fig["patients"], "images": fig["images"], "mean": fig["mean"],
                             "findings_in_mean": fig["findings_in_mean"],
                             "per_finding": {name: {"value": f["value"], "ci95": f["ci95"],
                                                    "positive_patients": f["positive_patients"]}
                                             for name, f in fig["per_finding"].items()}}
                      for side, fig in run["sides"].items()}}


def pointing_record(path: Path) -> dict:
    """`medflip bench pointing --json` of this model, for the card."""
    run = json.loads(path.read_text())
    return {k: run[k] for k in ("data_set", "films", "grid", "chance", "hottest_patch_in_box")}


def update_measurements(args: argparse.Namespace) -> int:
    """--measurements-only: the bundle at --out keeps its weights, choices and figures; only its benchmark
    measurements (few-label table, curves, ablation; zero-shot per finding; heat-map pointing) are replaced and its
    card regenerated."""
    from medflip_core.bundles.bundle import MANIFEST

    started = time.time()
    manifest = json.loads((args.out / MANIFEST).read_text())
    prov = manifest["provenance"]
    this_step = prov.get("checkpoint_step")
    previous_step = (prov.get("previous_model") or {}).get("checkpoint_step")
    if args.fewshot:
        prov["fewshot"] = [fewshot_record(p, 20, this_step, previous_step) for p in args.fewshot]
    if args.fewshot_curves:
        prov["fewshot_curves"] = fewshot_curves_record(args.fewshot_curves, this_step, previous_step)
    if args.ablation:
        prov["ablation"] = ablation_record(args.ablation, args.ablation_setting)
    if args.phase:  # here every phase, the last one included, in order
        prov["phases"] = [phase_record(run) for run in args.phase]
    if args.findings:
        prov["zero_shot_findings"] = findings_record(args.findings)
    if args.pointing:
        prov["heat_map_pointing"] = pointing_record(args.pointing)
    measured = {k: "in the card" for k in ("fewshot", "fewshot_curves", "ablation", "phases", "zero_shot_findings",
                                           "heat_map_pointing") if k in prov}
    return finish(args.out, manifest, measured, started)


def validation_sources(engine, folders: dict[str, Path]) -> tuple[list, list]:
    """The validation sources (embeddings, truth) and every image's patient id, per source."""
    from medflip_core.evaluation.evaluate import embed_folder, patients_of
    from medflip_core.inference.rule_choice import ValidationSource

    sources, patients = [], []
    for name, folder in folders.items():
        emb, truth, names, paths, _ = embed_folder(engine, folder)
        if names != ["NORMAL", "PNEUMONIA"]:
            raise SystemExit(f"{folder}: expected NORMAL and PNEUMONIA, found {names}")
        sources.append(ValidationSource(name, emb, truth))
        patients.append(list(patients_of(paths)))
    return sources, patients


def choose_prompts(engine, sources: list) -> tuple[dict, list[dict]]:
    """The prompt set (parts of the shipped one) whose worst validation source ranks best
    (medflip_core.inference.prompt_choice); shipped in the manifest so the engine uses it."""
    from medflip_core.inference.prompt_choice import candidates, compare_prompt_sets
    from medflip_core.labeler.prompts import ShippedPrompts, load_prompt_set

    chosen, rows = compare_prompt_sets(sources, LABELS, "Pneumonia", engine.embed_texts,
                                       candidates(load_prompt_set()))
    return ShippedPrompts(chosen.name, chosen.prompt_set, chosen.mode).as_dict(), rows


def choose_rule(bundle: Path, sources: list, patients: list) -> tuple[dict, list[dict], dict]:
    """The decision rule for the bundle's (already chosen) prompts: a new engine, which reads them from the
    updated manifest. Also the split-half check of the choice (chosen on half the patients, measured on the
    other half)."""
    from medflip_core.inference.engine import Engine
    from medflip_core.inference.rule_choice import choose_decision_rule, rank_rules, split_half_check
    from medflip_core.inference.zeroshot import negative_texts
    from medflip_core.labeler.prompts import load_prompt_set

    engine = Engine(bundle, verify=False)
    pos = engine.class_embeddings(LABELS)
    neg = engine.embed_texts(negative_texts(LABELS, load_prompt_set().negative_template))
    rule, table = choose_decision_rule(sources, pos, neg, LABELS, engine.logit_scale, "Pneumonia")
    best = rank_rules(table)[:5]
    check = split_half_check(sources, patients, pos, neg, LABELS, engine.logit_scale, "Pneumonia")
    return rule.as_dict(), best, check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, nargs="?", help="the finished training run folder")
    parser.add_argument("--from-bundle", action="store_true",
                        help="no export: keep the weights and sentence bank of the bundle at --out, take the "
                             "training config from its manifest, and choose prompts and rule and evaluate again")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medflip-default-build"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--nih-csv", type=Path, help="NIH label CSV (default: the training config's extra source, "
                                                      "else ../shared/data/cxr-nih-adult/labels.csv)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--phase", type=Path, action="append", default=[],
                        help="an earlier training phase's run folder (in order; repeat), listed in the card; with "
                             "--measurements-only every phase, the last one included")
    parser.add_argument("--previous", type=Path,
                        help="the bundle this one replaces (default: the one at --out, read before it is replaced)")
    parser.add_argument("--fewshot", type=Path, action="append", default=[],
                        help="`medflip bench fewshot --json` output(s) measuring this model, for the card (repeat)")
    parser.add_argument("--fewshot-curves", type=Path,
                        help="`medflip bench fewshot --ks 5,10,20,40 --json` output: this model, the one it replaces, "
                             "pixels and a random tower at every k, for the card")
    parser.add_argument("--ablation", type=Path,
                        help="`medflip bench fewshot --json` output over the runs of scripts/ablation_v4.sh")
    parser.add_argument("--ablation-setting", default="phase 2 of v4 cut to 600 steps at 112 px, from the MAE "
                                                      "checkpoint",
                        help="how the ablation arms were trained, for the card")
    parser.add_argument("--findings", type=Path,
                        help="`medflip bench findings --json` output of this model (zero-shot per NIH finding)")
    parser.add_argument("--pointing", type=Path,
                        help="`medflip bench pointing --json` output of this model (heat-maps against TB boxes)")
    parser.add_argument("--measurements-only", action="store_true",
                        help="no export, no re-evaluation: replace the few-label measurements of the bundle at --out "
                             "and regenerate its card")
    args = parser.parse_args()
    if args.measurements_only:
        return update_measurements(args)
    from medflip_core.bundles.bundle import MANIFEST, refresh_file_list
    from medflip_core.inference.engine import reembed_bundle_bank
    from medflip_core.inference.zeroshot import MANIFEST_KEY
    from medflip_core.labeler.prompts import MANIFEST_PROMPTS
    from medflip_core.resources import default_shared_data

    if (args.run is None) != args.from_bundle:
        parser.error("give the training run folder, or --from-bundle (not both)")
    earlier = json.loads((args.out / MANIFEST).read_text()) if args.from_bundle else {}
    previous_dir = args.previous or (args.out if not args.from_bundle and (args.out / MANIFEST).is_file() else None)
    previous = previous_record(previous_dir) if previous_dir else None
    config = earlier["provenance"]["training_config"] if args.from_bundle else \
        json.loads((args.run / "config.json").read_text())
    images = Path(config["images"][0])
    corpus = Path(config["corpus"]) if Path(config["corpus"]).is_absolute() else REPO / config["corpus"]
    extra = config.get("extra_sources") or []
    extra = [extra] if isinstance(extra, str) else extra
    nih_csv = args.nih_csv or (Path(extra[0]) if extra else default_shared_data() / "cxr-nih-adult" / "labels.csv")
    vf, seed = str(config["val_fraction"]), str(config["seed"])
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    started = time.time()

    if args.from_bundle:
        bank = earlier["provenance"]["sentence_bank"]
    else:
        medflip("export", str(args.run), str(args.out), "--name", "medflip-default", "--half-weights",
                "--quantize-text")
        bank = reembed_bundle_bank(args.out)  # bank and queries: the same (int8 ONNX) text encoder
    split = ["split", str(images), str(args.work / "kermany"), "--val-fraction", vf, "--seed", seed]
    for key, flag in (("class_map", "--class-map"), ("patient_pattern", "--patient-pattern")):
        if config.get(key):
            split += [flag, str(config[key])]
    medflip(*split)
    val = {"Kermany": args.work / "kermany" / "val"}
    val["NIH"], nih_multi = nih_validation_folder(nih_csv, float(vf), int(seed), args.work / "nih-val")

    from medflip_core.inference.engine import Engine

    engine = Engine(args.out, verify=False)
    sources, patients = validation_sources(engine, val)
    manifest_path = args.out / MANIFEST

    def update_manifest(key: str, value: dict) -> None:
        manifest = json.loads(manifest_path.read_text())
        manifest[key] = value
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        refresh_file_list(args.out)

    prompts, prompt_rows = choose_prompts(engine, sources)
    update_manifest(MANIFEST_PROMPTS, prompts)
    rule, candidates, check = choose_rule(args.out, sources, patients)
    update_manifest(MANIFEST_KEY, rule)

    figures: dict = {"prompts": {"chosen": prompts["name"], "candidates": prompt_rows},
                     "decision_rule": {"rule": rule, "best_candidates": candidates, "split_half_check": check}}
    commands = {}
    for name, folder in val.items():
        ev_args = ["evaluate", str(folder), "--model", str(args.out), "--positive", "PNEUMONIA", "--json",
                   "--n-boot", str(args.n_boot), *PROMPTS]
        rr_args = ["retrieval-eval", str(folder), "--corpus", str(corpus), "--model", str(args.out), "--json"]
        ev, rr = json.loads(medflip(*ev_args)), json.loads(medflip(*rr_args))
        commands[name] = {"evaluate": "medflip " + " ".join(ev_args), "retrieval": "medflip " + " ".join(rr_args)}
        figures[name] = {
            "images": ev["images"], "patients": ev["patients"], "per_class": ev["images_per_class"],
            "roc_auc_pneumonia": ev["roc_auc"], "accuracy": ev["accuracy"], "ece": ev["ece"],
            "ece_if_calibrated": ev["ece_if_calibrated"],
            "best_threshold_accuracy": ev["best_threshold_accuracy"]["value"],
            "retrieval": {k: rr[k] for k in ("precision_at_k", "pool_size", "chance", "pool_reports", "classes")},
        }
    from medflip_core.evaluation.evaluate import per_finding_auc

    figures["NIH_per_finding"] = per_finding_auc(Engine(args.out), nih_multi, min_patients=10, n_boot=args.n_boot)

    measured = {
        "evaluation_commands": commands,
        "data_sha256": {"kermany_train_folder": folder_digest(images),
                        "nih_labels_csv": hashlib.sha256(nih_csv.read_bytes()).hexdigest(),
                        "iu_reports_archive": hashlib.sha256(corpus.read_bytes()).hexdigest()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "sentence_bank": bank,
        "evaluation": figures,
    }
    if previous:
        measured["previous_model"] = previous
    if args.fewshot:
        previous_step = (previous or {}).get("checkpoint_step")
        measured["fewshot"] = [fewshot_record(p, 20, None, previous_step) for p in args.fewshot]
    if args.ablation:
        measured["ablation"] = ablation_record(args.ablation, args.ablation_setting)
    if args.from_bundle:  # the training record stays the bundle's own; the choices and figures are new
        manifest = json.loads(manifest_path.read_text())
        manifest["provenance"] = {**earlier["provenance"], **measured,
                                  "evaluated_by": "python scripts/build_default_model.py --from-bundle"}
        return finish(args.out, manifest, figures, started)
    start, done = run_events(args.run)
    provenance = {
        "command": f"python -m trainer pretrain --config <config of {args.run}>; "
                   f"python scripts/build_default_model.py {args.run}",
        **measured,
        "training_config": config,
        "training_wall_seconds": done.get("elapsed_s"), "training_steps": done.get("step"),
        "images_seen": (done.get("step") or 0) * config["batch_size"],
        "n_train_images": start.get("n_train"), "n_val_images": start.get("n_val"),
        "n_sentences": start.get("n_sentences"), "device": start.get("device"),
        "init_from": init_record(config.get("init_from")),
    }
    if args.phase:
        provenance["phases"] = [phase_record(run) for run in [*args.phase, args.run]]
    manifest = json.loads(manifest_path.read_text())
    # without an events file (--events), the checkpoint's own step and time (recorded by export) stand in
    exported = manifest["provenance"]
    provenance["training_steps"] = provenance["training_steps"] or exported.get("checkpoint_step")
    provenance["training_wall_seconds"] = provenance["training_wall_seconds"] or exported.get("training_seconds")
    provenance["images_seen"] = (provenance["training_steps"] or 0) * config["batch_size"]
    manifest["provenance"] = {**exported, **provenance}
    return finish(args.out, manifest, figures, started)


def finish(out: Path, manifest: dict, figures: dict, started: float) -> int:
    """Write the manifest and the card generated from it, check the bundle, print what was built."""
    from medflip_core.bundles.bundle import MANIFEST, load_bundle
    from medflip_core.bundles.model_card import write_clip_card

    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    write_clip_card(out)
    load_bundle(out, verify=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps({"bundle": str(out), "bytes": size, "figures": figures,
                      "build_seconds": round(time.time() - started, 1)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
