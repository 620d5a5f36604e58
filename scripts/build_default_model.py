"""Build the bundled default model from a finished training run: export, evaluate, write the model card.

    .venv/bin/python -m trainer pretrain --config configs/default-model.yaml     # ~50 min on 2 CPU cores
    .venv/bin/python scripts/build_default_model.py runs/default-model

The figures in the card come from the run's own patient-disjoint validation split of the Kermany
train folder (the same seed and fraction as training), recreated with `medflip split`.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/medflip-default-build"))
    args = parser.parse_args()
    config = json.loads((args.run / "config.json").read_text())
    images = Path(config["images"][0])
    corpus = REPO / config["corpus"] if not Path(config["corpus"]).is_absolute() else Path(config["corpus"])
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)

    started = time.time()
    medflip("export", str(args.run), str(OUT), "--name", "medflip-default", "--half-weights", "--quantize-text")
    medflip("split", str(images), str(args.work / "split"), "--val-fraction", str(config["val_fraction"]),
            "--seed", str(config["seed"]))
    val = args.work / "split" / "val"
    evaluation = json.loads(medflip("evaluate", str(val), "--model", str(OUT), "--positive", "PNEUMONIA", "--json"))
    prompted = json.loads(medflip("evaluate", str(val), "--model", str(OUT), "--positive", "PNEUMONIA", "--json",
                                  "--prompt", "NORMAL=No Finding", "--prompt", "PNEUMONIA=Pneumonia"))
    retrieval = json.loads(medflip("retrieval-eval", str(val), "--corpus", str(corpus), "--model", str(OUT),
                                   "--json"))
    events = [json.loads(x) for x in (REPO / "runs" / "default-model.events.jsonl").read_text().splitlines()
              if x.startswith("{")] if (REPO / "runs" / "default-model.events.jsonl").is_file() else []
    done = next((e for e in reversed(events) if e["event"] == "done"), {})
    start = next((e for e in events if e["event"] == "start"), {})
    figures = {
        "validation_split": {"images": evaluation["n"], "per_class": evaluation["n_per_class"],
                             "data_set": "Kermany pediatric CXR train folder, patient-disjoint 15 % validation "
                                         "split (seed 0); never used for training"},
        "zero_shot_class_names": {"accuracy": evaluation["accuracy"], "roc_auc_pneumonia": evaluation["roc_auc"],
                                  "macro_f1": evaluation["macro_f1"]},
        "zero_shot_label_space_names": {"accuracy": prompted["accuracy"], "roc_auc_pneumonia": prompted["roc_auc"],
                                        "macro_f1": prompted["macro_f1"]},
        "retrieval": {"precision_at_k": retrieval["precision_at_k"], "pool_size": retrieval["pool_size"],
                      "chance": retrieval["chance"], "corpus": "IU X-ray reports (Open-i), balanced pool of "
                      "sentences labelled No Finding or Pneumonia by the project's labeler"},
    }
    provenance = {
        "command": "python -m trainer pretrain --config configs/default-model.yaml; "
                   "python scripts/build_default_model.py runs/default-model",
        "training_config": config,
        "training_wall_seconds": done.get("elapsed_s"),
        "training_steps": done.get("step"),
        "images_seen": (done.get("step") or 0) * config["batch_size"],
        "n_train_images": start.get("n_train"), "n_val_images": start.get("n_val"),
        "n_sentences": start.get("n_sentences"),
        "data_sha256": {"kermany_train_folder": folder_digest(images),
                        "iu_reports_archive": hashlib.sha256(corpus.read_bytes()).hexdigest()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "device": start.get("device"),
        "evaluation": figures,
    }
    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["provenance"] = {**manifest["provenance"], **provenance}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    (OUT / "MODEL_CARD.md").write_text(model_card(provenance, figures, manifest), encoding="utf-8")
    from medflip_core.bundle import load_bundle, refresh_file_list

    refresh_file_list(OUT)
    load_bundle(OUT, verify=True)
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(json.dumps({"bundle": str(OUT), "bytes": size, "figures": figures,
                      "build_seconds": round(time.time() - started, 1)}, indent=2))
    return 0


def ci(m: dict) -> str:
    return f"{m['value']:.3f} (95 % CI {m['ci95'][0]:.3f}–{m['ci95'][1]:.3f})"


def model_card(prov: dict, fig: dict, manifest: dict) -> str:
    cfg = prov["training_config"]
    pk = ", ".join(f"P@{k} {v:.3f}" for k, v in fig["retrieval"]["precision_at_k"].items())
    wall = prov["training_wall_seconds"] or 0
    return f"""# MedFLIP default model (medflip-default)

**Research use only. Not a medical device; not for diagnosis, triage or any clinical decision.**

## What it is
A CLIP-style image-text model trained with MedFLIP (masked image patches, soft semantic targets from
extracted labels, SVD term on σ₁): image tower ViT-Tiny/16 at {cfg['image_size']} px, **randomly initialised**
(no image weights are available offline) and trained only on the data below; text tower all-MiniLM-L6-v2
(sentence-transformers, Apache-2.0) with its last 2 layers fine-tuned; shared embedding {cfg['embed_dim']}.
Mask ratio {cfg['mask_ratio']}, β {cfg['beta']}, SVD reading "{cfg['svd_reading']}", batch {cfg['batch_size']},
{prov['training_steps']} steps ({prov['images_seen']:,} images seen) in {wall / 60:.0f} min on {prov['machine']['cpus']}
CPU cores ({prov['device']}).

## Data (unpaired; the label space links them)
- Images: Kermany et al., pediatric chest X-rays, train split ({prov['n_train_images']} training images after
  holding out {prov['n_val_images']} images of 15 % of patients). NORMAL → No Finding;
  PNEUMONIA → Pneumonia + Lung Opacity.
  Licence CC BY 4.0 (Kermany, Zhang, Goldbaum et al., Mendeley Data v2, doi:10.17632/rscbjbr9sj.2).
- Text: {prov['n_sentences']} sentences of the Indiana University chest X-ray reports (Open-i), labelled by this
  project's rule-based labeler. Licence CC BY-NC-ND 4.0: the archive ships unmodified in resources/corpora and
  is read at run time; the sentence bank stores embeddings and indices only.
- Data hashes: Kermany folder {prov['data_sha256']['kermany_train_folder'][:16]}…, IU archive
  {prov['data_sha256']['iu_reports_archive'][:16]}….

## How well it does (data set: {fig['validation_split']['data_set']}; n = {fig['validation_split']['images']},
{fig['validation_split']['per_class']})
- Zero-shot, told only the class folder names (NORMAL, PNEUMONIA): ROC AUC for pneumonia
  {ci(fig['zero_shot_class_names']['roc_auc_pneumonia'])}; accuracy {ci(fig['zero_shot_class_names']['accuracy'])}.
- Zero-shot with label-space names (No Finding, Pneumonia): ROC AUC
  {ci(fig['zero_shot_label_space_names']['roc_auc_pneumonia'])}; accuracy
  {ci(fig['zero_shot_label_space_names']['accuracy'])}.
- Image → sentence retrieval against a balanced pool of {fig['retrieval']['pool_size']} IU sentences
  (No Finding vs Pneumonia; chance {fig['retrieval']['chance']:.2f}): {pk}.

These figures come from held-out patients of the *same* pediatric data set the model trained on. They are
not comparable to the paper's CheXpert/COVID/RSNA figures and say little about adult radiographs, other
hospitals or other findings.

## What it has not seen / known limits
- Only pediatric AP chest X-rays of two classes (normal, pneumonia). Labels such as Cardiomegaly, Effusion or
  Pneumothorax are known to it only through report sentences, never through an image showing them: scores for
  them are not validated and should be read as text similarity, not detection.
- No adult, lateral, portable-ICU or non-chest images. Out-of-distribution inputs (other body parts, animals) still
  get scores; the CLI and app flag non-chest body parts from the DICOM metadata.
- Kermany images were resized to 224×224 without keeping the aspect ratio; real-world aspect ratios differ.
- The text encoder in ONNX is int8-quantised to keep the bundle small; the safetensors weights are float16.

Exact command, configuration, data hashes and machine: `manifest.json` → `provenance`.
"""


if __name__ == "__main__":
    sys.exit(main())
