"""Build the bundled default model from a finished training run: export, choose the zero-shot decision rule on
validation data of both sources, evaluate per source, write the model card from the manifest.

    .venv/bin/python -m trainer pretrain --config configs/default-model-v2.yaml     # in the background
    .venv/bin/python scripts/build_default_model.py runs/default-model-v2

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


def choose_rule(bundle: Path, folders: dict[str, Path]) -> tuple[dict, list[dict]]:
    from medflip_core.engine import Engine
    from medflip_core.evaluation import embed_folder
    from medflip_core.prompts import load_prompt_set
    from medflip_core.zeroshot import ValidationSource, choose_decision_rule, negative_texts

    engine = Engine(bundle, verify=False)
    sources = []
    for name, folder in folders.items():
        emb, truth, names, _, _ = embed_folder(engine, folder)
        if names != ["NORMAL", "PNEUMONIA"]:
            raise SystemExit(f"{folder}: expected NORMAL and PNEUMONIA, found {names}")
        sources.append(ValidationSource(name, emb, truth))
    pos = engine.class_embeddings(LABELS)
    neg = engine.embed_texts(negative_texts(LABELS, load_prompt_set().negative_template))
    rule, table = choose_decision_rule(sources, pos, neg, LABELS, engine.logit_scale, "Pneumonia")
    best = sorted(table, key=lambda r: (round(r["worst_gap"], 6), -r["mean_accuracy"]))[:5]
    return rule.as_dict(), best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/medflip-default-build"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--nih-csv", type=Path, help="NIH label CSV (default: the training config's extra source, "
                                                      "else ../shared/data/cxr-nih-adult/labels.csv)")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    from medflip_core.bundle import MANIFEST, load_bundle, refresh_file_list
    from medflip_core.resources import default_shared_data
    from medflip_core.retrieval import reembed_bundle_bank
    from medflip_core.zeroshot import MANIFEST_KEY

    config = json.loads((args.run / "config.json").read_text())
    images = Path(config["images"][0])
    corpus = Path(config["corpus"]) if Path(config["corpus"]).is_absolute() else REPO / config["corpus"]
    extra = config.get("extra_sources") or []
    extra = [extra] if isinstance(extra, str) else extra
    nih_csv = args.nih_csv or (Path(extra[0]) if extra else default_shared_data() / "cxr-nih-adult" / "labels.csv")
    vf, seed = str(config["val_fraction"]), str(config["seed"])
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    started = time.time()

    medflip("export", str(args.run), str(args.out), "--name", "medflip-default", "--half-weights", "--quantize-text")
    bank = reembed_bundle_bank(args.out)  # bank and queries: the same (int8 ONNX) text encoder
    split = ["split", str(images), str(args.work / "kermany"), "--val-fraction", vf, "--seed", seed]
    for key, flag in (("class_map", "--class-map"), ("patient_pattern", "--patient-pattern")):
        if config.get(key):
            split += [flag, str(config[key])]
    medflip(*split)
    val = {"Kermany": args.work / "kermany" / "val"}
    val["NIH"], nih_multi = nih_validation_folder(nih_csv, float(vf), int(seed), args.work / "nih-val")

    rule, candidates = choose_rule(args.out, val)
    manifest_path = args.out / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest[MANIFEST_KEY] = rule
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    refresh_file_list(args.out)

    figures: dict = {"decision_rule": {"rule": rule, "best_candidates": candidates}}
    commands = {}
    for name, folder in val.items():
        ev_args = ["evaluate", str(folder), "--model", str(args.out), "--positive", "PNEUMONIA", "--json",
                   "--n-boot", str(args.n_boot), *PROMPTS]
        rr_args = ["retrieval-eval", str(folder), "--corpus", str(corpus), "--model", str(args.out), "--json"]
        ev, rr = json.loads(medflip(*ev_args)), json.loads(medflip(*rr_args))
        commands[name] = {"evaluate": "medflip " + " ".join(ev_args), "retrieval": "medflip " + " ".join(rr_args)}
        figures[name] = {
            "images": ev["n"], "patients": ev["n_patients"], "per_class": ev["n_per_class"],
            "roc_auc_pneumonia": ev["roc_auc"], "accuracy": ev["accuracy"], "ece": ev["ece"],
            "best_threshold_accuracy": ev["best_threshold_accuracy"]["value"],
            "retrieval": {k: rr[k] for k in ("precision_at_k", "pool_size", "chance", "pool_reports", "classes")},
        }
    from medflip_core.engine import Engine
    from medflip_core.evaluation import per_finding_auc

    figures["NIH_per_finding"] = per_finding_auc(Engine(args.out), nih_multi, min_patients=10, n_boot=args.n_boot)

    events_file = args.run.with_suffix(".events.jsonl")
    events = [json.loads(x) for x in events_file.read_text().splitlines() if x.startswith("{")] \
        if events_file.is_file() else []
    done = next((e for e in reversed(events) if e["event"] == "done"), {})
    start = next((e for e in events if e["event"] == "start"), {})
    provenance = {
        "command": f"python -m trainer pretrain --config <config of {args.run}>; "
                   f"python scripts/build_default_model.py {args.run}",
        "evaluation_commands": commands,
        "training_config": config,
        "training_wall_seconds": done.get("elapsed_s"), "training_steps": done.get("step"),
        "images_seen": (done.get("step") or 0) * config["batch_size"],
        "n_train_images": start.get("n_train"), "n_val_images": start.get("n_val"),
        "n_sentences": start.get("n_sentences"), "device": start.get("device"),
        "data_sha256": {"kermany_train_folder": folder_digest(images),
                        "nih_labels_csv": hashlib.sha256(nih_csv.read_bytes()).hexdigest(),
                        "iu_reports_archive": hashlib.sha256(corpus.read_bytes()).hexdigest()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "sentence_bank": bank,
        "evaluation": figures,
    }
    manifest = json.loads(manifest_path.read_text())
    # without an events file (--events), the checkpoint's own step and time (recorded by export) stand in
    exported = manifest["provenance"]
    provenance["training_steps"] = provenance["training_steps"] or exported.get("checkpoint_step")
    provenance["training_wall_seconds"] = provenance["training_wall_seconds"] or exported.get("training_seconds")
    provenance["images_seen"] = (provenance["training_steps"] or 0) * config["batch_size"]
    manifest["provenance"] = {**exported, **provenance}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    (args.out / "MODEL_CARD.md").write_text(model_card(manifest), encoding="utf-8")
    refresh_file_list(args.out)
    load_bundle(args.out, verify=True)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(json.dumps({"bundle": str(args.out), "bytes": size, "figures": figures,
                      "build_seconds": round(time.time() - started, 1)}, indent=2, default=str))
    return 0


def ci(m: dict) -> str:
    return f"{m['value']:.3f} (95 % CI {m['ci95'][0]:.3f}–{m['ci95'][1]:.3f})"


def model_card(manifest: dict) -> str:
    """The model card, from the manifest alone (run again on the manifest, it gives the same text)."""
    prov = manifest["provenance"]
    cfg = prov["training_config"]
    model = manifest["model"]
    fig = prov["evaluation"]
    rule = manifest.get("zero_shot_rule") or {}
    pre = manifest["preprocess"]
    wall = prov.get("training_wall_seconds") or 0
    extra = cfg.get("extra_sources") or []
    extra = [extra] if isinstance(extra, str) else extra
    lines = [
        "# MedFLIP default model (medflip-default)", "",
        "**Research use only. Not a medical device; not for diagnosis, triage or any clinical decision.**", "",
        "This card is generated by scripts/build_default_model.py from manifest.json; do not edit it by hand.", "",
        "## What it is",
        f"A CLIP-style image-text model trained with MedFLIP (loss {cfg['loss']}, mask ratio {cfg['mask_ratio']}, "
        f"β {cfg['beta']}): image tower {model['vision']} at {model['image_size']} px, randomly initialised; text "
        f"tower all-MiniLM-L6-v2 ({cfg.get('text_train')} fine-tuning); shared embedding {model['embed_dim']}. "
        f"{prov.get('training_steps')} steps of batch {cfg['batch_size']} ({prov.get('images_seen', 0):,} images "
        f"seen) in {wall / 60:.0f} min on {prov['machine']['cpus']} CPU cores ({prov.get('device')}).", "",
        "## Data",
        f"- Images: {', '.join(cfg['images'])} (Kermany et al., pediatric, CC BY 4.0) with NORMAL → No Finding and "
        "PNEUMONIA → Pneumonia + Lung Opacity in the label space"
        + (f"; plus {', '.join(extra)} (NIH ChestX-ray14 adult sample; NIH findings mapped onto the CheXpert "
           "labels by medflip_core.labels.NIH_TO_CHEXPERT)" if extra else "") + ".",
        f"  {prov.get('n_train_images')} training images; {cfg['val_fraction']:.0%} of patients of every source held "
        f"out (seed {cfg['seed']}). Sampling: source weights {cfg.get('source_weights') or 'equal'}, no-finding vs "
        f"finding balanced within each source; augmentation {'on' if cfg.get('augment') else 'off'} (train only).",
        f"- Text: {prov.get('n_sentences')} labelled sentences of the Indiana University reports (Open-i, CC BY-NC-ND "
        f"4.0, shipped unmodified and read at run time); {cfg.get('corpus_holdout', 0):.0%} of reports held out of "
        "training for retrieval evaluation (split by report).",
        f"- Preprocessing (training and inference alike): aspect ratio kept, padded to a square of "
        f"{pre.get('image_size')} px (letterbox), grey.",
        f"- Data hashes: {json.dumps(prov['data_sha256'])}.", "",
        "## Zero-shot decision rule (shipped in manifest.json → zero_shot_rule)",
        f"Mode {rule.get('mode')}, prompt bias {rule.get('bias')}, temperature {rule.get('temperature', 1):.3g}; "
        f"chosen on {rule.get('chosen_on')} (criterion: the worst source's gap between its accuracy and its "
        "best-threshold accuracy). Accuracy and calibration below are on those same validation patients (two "
        "fitted numbers: a bias and a temperature); ROC AUC does not depend on the rule.", "",
        "## How well it does (validation patients never trained on; CIs resample patients)",
    ]
    for name in ("Kermany", "NIH"):
        f = fig[name]
        pk = ", ".join(f"P@{k} {v:.3f}" for k, v in f["retrieval"]["precision_at_k"].items())
        lines += [
            f"- {name}: {f['images']} images of {f['patients']} patients {f['per_class']}. Pneumonia vs no finding "
            f"ROC AUC {ci(f['roc_auc_pneumonia'])}; accuracy {ci(f['accuracy'])} (best threshold on these images: "
            f"{f['best_threshold_accuracy']:.3f}); expected calibration error {ci(f['ece'])}.",
            f"  Retrieval, image → sentence against {f['retrieval']['pool_size']} sentences "
            f"(chance {f['retrieval']['chance']:.2f}; {f['retrieval']['pool_reports']}): {pk}.",
        ]
    per = fig["NIH_per_finding"]
    lines += ["", f"Per-finding zero-shot ROC AUC on NIH validation patients (independent probabilities; findings "
                  f"with ≥ {per['min_patients']} positive patients among {per['n_patients']}):"]
    for name, v in per["per_finding"].items():
        lines.append(f"- {name} (as {v['label']}): {ci(v)}, {v['positive_patients']} positive patients")
    if not per["per_finding"]:
        lines.append("- none reaches the minimum number of positive patients")
    lines += ["", "## Limits",
              "- Two image sources only: pediatric Kermany (one hospital) and a small NIH adult sample; findings "
              "other than pneumonia are known mostly from report sentences and are not validated except as listed.",
              "- Validation figures come from held-out patients of the training sources, not from other hospitals.",
              "- Out-of-distribution inputs (other body parts, animals) still get scores; the app flags non-chest "
              "DICOM body parts.",
              f"- The text encoder in ONNX is {'int8-quantised' if manifest.get('text_encoder_quantized') else 'fp32'}"
              f"; weights are {manifest.get('weights_dtype')}; the sentence bank is embedded with that same encoder.",
              "", "Exact commands, configuration, data hashes and machine: manifest.json → provenance.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
