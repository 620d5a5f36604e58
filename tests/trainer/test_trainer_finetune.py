"""Fine-tuning the image tower (partial / full) of a real exported bundle, ending in a classifier bundle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def _tune_args(folder, bundle, run, out, *extra):
    return ["--images", str(folder), "--init-from", str(bundle), "--batch-size", "4", "--val-fraction", "0.4",
            "--warmup-steps", "0", "--out-dir", str(run), "--bundle-out", str(out), "--n-boot", "50", *extra]


@pytest.mark.parametrize("mode", ["partial", "full"])
def test_tower_finetune_ends_in_a_calibrated_classifier_bundle(tt, tiny_bundle, small_folder, tmp_path, mode):
    from medflip_core.imaging import load_image
    from medflip_core.inference.engine import Engine

    out = tmp_path / "clf"
    code, events, err = tt.run("finetune", _tune_args(small_folder, tiny_bundle, tmp_path / "run", out,
                                                      "--max-steps", "4", "--eval-every", "2", "--augment",
                                                      "--finetune-mode", mode, "--lr", "1e-3"))
    assert code == 0, err[-3000:]
    start, done = events[0], events[-1]
    assert start["job"] == "finetune" and start["mode"] == mode and start["classes"] == ["NORMAL", "PNEUMONIA"]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [2, 4] and set(evals[0]["val_auc_per_class"]) == {"NORMAL", "PNEUMONIA"}
    assert done["status"] == "completed" and done["bundle"] == str(out)
    # 32 films, 40 % for validation: too few patients a class, said at every evaluation and at the end
    assert all(e["small_validation"].startswith("Too few patients to judge this classifier") for e in evals)
    assert 1 <= len(done["warnings"]) <= 2 and "widened to the exact binomial interval" in done["warnings"][0]

    engine = Engine(out)  # the torch-free engine loads it and verifies every file's sha256
    manifest = json.loads((out / "manifest.json").read_text())
    clf = manifest["classifier"]
    assert clf["mode"] == mode and clf["classes"] == ["NORMAL", "PNEUMONIA"] and clf["zero_shot"] is False
    assert manifest["validation"]["patients"] > 0 and "Youden" in clf["threshold_rule"]
    assert not (out / "text_encoder.onnx").exists()  # a tuned tower no longer matches the base text space
    # nor does the base model's chest-film reference describe it: pixel checks only, and the card says so
    assert not (out / "ood_reference.npz").exists() and clf["ood_reference"] is False
    assert "the DICOM tags and the pixels only" in (out / "MODEL_CARD.md").read_text()
    # the exposure check on the same patients (two classes: the operating point's), flagged in the warnings too
    check = manifest["validation"]["exposure_check"]
    assert list(check["per_class"]) == [clf["operating_point"]] and "## Exposure check" in (
        out / "MODEL_CARD.md").read_text()
    assert (check["message"] in done["warnings"]) == bool(check["flagged"])

    # the shipped ONNX tower is the best validation weights: its embedding equals the torch tower's
    import torch

    from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
    from medflip_core.model.config import ModelConfig
    from trainer.finetune import TowerClassifier

    best = load_file(str(tmp_path / "run" / "best-model.safetensors"))
    cfg = ModelConfig.from_dict(manifest["model"])
    from medflip_core.model.image_tower import ImageTower

    model = TowerClassifier(ImageTower(cfg), cfg.embed_dim, 2)
    model.load_state_dict(best)
    image = load_image(sorted((small_folder / "NORMAL").iterdir())[0])
    with torch.no_grad():
        ref = model.eval().embed(torch.from_numpy(preprocess(image, PreprocessConfig.from_dict(
            manifest["preprocess"]))[None])).numpy()[0]
    got = engine.embed_images([image]).embedding[0]
    assert float(np.dot(ref, got) / np.linalg.norm(ref) / np.linalg.norm(got)) > 0.9999
    from medflip_core.inference.batch import classify_files

    row = classify_files(engine, [str(sorted((small_folder / "PNEUMONIA").iterdir())[0])], [], classifier=True)[0]
    assert set(row["scores"]) == {"NORMAL", "PNEUMONIA"} and sum(row["scores"].values()) == pytest.approx(1, abs=1e-3)

    # partial trains the top blocks only: the first block keeps the base model's weights
    base = load_file(str(tiny_bundle / "weights.safetensors"))
    first = "image_tower.vit.blocks.0.attn.qkv.weight"
    last_block = max(int(k.split(".")[3]) for k in best if k.startswith("image_tower.vit.blocks."))
    top = f"image_tower.vit.blocks.{last_block}.attn.qkv.weight"
    assert torch.equal(best[first], base[first].float()) == (mode == "partial")
    assert not torch.equal(best[top], base[top].float())


def test_early_stopping_when_validation_stops_improving(tt, tiny_bundle, small_folder, tmp_path):
    # learning rates 0: the validation AUC cannot improve after the first evaluation
    code, events, err = tt.run("finetune", _tune_args(small_folder, tiny_bundle, tmp_path / "run", tmp_path / "clf",
                                                      "--max-steps", "50", "--eval-every", "2", "--lr", "0",
                                                      "--head-lr", "0", "--early-stop-patience", "1"))
    assert code == 0, err[-3000:]
    done = events[-1]
    assert done["stopped_early"] is True and done["step"] == 4 and (tmp_path / "clf" / "manifest.json").is_file()


def test_cancel_writes_no_bundle_and_the_rerun_resumes_and_writes_it(tt, tiny_bundle, small_folder, tmp_path):
    out, run = tmp_path / "clf", tmp_path / "run"
    args = _tune_args(small_folder, tiny_bundle, run, out, "--max-steps", "200", "--eval-every", "50",
                      "--checkpoint-every", "50")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(tt.cmd("finetune", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tt.repo)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and events[-1]["step"] >= 2:
            proc.send_signal(signal.SIGTERM)
            break
    events += [json.loads(x) for x in proc.stdout.read().splitlines() if x.startswith("{")]
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    done = events[-1]
    assert done["status"] == "cancelled" and done["bundle"] is None and done["checkpoint"]
    assert not out.exists() and not list(tmp_path.glob(".clf*"))  # no half-written bundle anywhere
    stopped_at = done["step"]

    code, events, err = tt.run("finetune", [*args[:-6], "--max-steps", str(stopped_at + 2), "--eval-every", "50",
                                            "--resume"])
    assert code == 0, err[-3000:]
    assert events[0]["start_step"] == stopped_at and events[-1]["step"] == stopped_at + 2
    assert (out / "manifest.json").is_file() and events[-1]["bundle"] == str(out)


def test_multi_label_csv_uses_per_label_sigmoids(tt, tiny_bundle, shared_data, tmp_path):
    csv = shared_data / "cxr-nih-adult" / "labels.csv"
    out = tmp_path / "clf"
    code, events, err = tt.run("finetune", _tune_args(csv, tiny_bundle, tmp_path / "run", out,
                                                      "--labels", "Effusion,Infiltration,Atelectasis",
                                                      "--max-steps", "2", "--eval-every", "2", "--max-images", "16",
                                                      "--max-val-images", "40"), timeout=900)
    assert code == 0, err[-3000:]
    assert events[0]["multi_label"] is True
    clf = json.loads((out / "manifest.json").read_text())["classifier"]
    assert clf["multi_label"] is True and clf["activation"].startswith("sigmoid")
    # the bundle's figures use every validation image, the evaluations during training a fixed subset
    validation = json.loads((out / "manifest.json").read_text())["validation"]
    assert validation["images"] > 40
    # multi-label: the exposure check per label, one vs the rest
    labels = set(validation["exposure_check"]["per_class"])
    assert labels and labels <= {"Effusion", "Infiltration", "Atelectasis"}


def test_medflip_finetune_partial_runs_the_trainer_and_refuses_to_overwrite(tiny_bundle, small_folder, tmp_path):
    out = tmp_path / "clf"
    cmd = [sys.executable, "-m", "medflip_core.cli", "finetune", "--images", str(small_folder), "--mode", "partial",
           "--base", str(tiny_bundle), "--out", str(out), "--run-dir", str(tmp_path / "run"), "--epochs", "0.5",
           "--batch-size", "4", "--eval-every", "2", "--val-fraction", "0.4", "--n-boot", "50"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validation ROC AUC" in proc.stderr and "classifier bundle written to" in proc.stdout
    assert (out / "manifest.json").is_file()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode != 0 and "exists" in again.stderr and "--overwrite" in again.stderr


def test_medflip_train_runs_the_same_trainer(tiny_bundle, small_folder, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "train", "finetune", "--images",
                           str(small_folder), "--init-from", str(tiny_bundle), "--batch-size", "4", "--max-steps", "1",
                           "--val-fraction", "0.4", "--out-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["event"] == "done"


def test_torchrun_two_cpu_processes_fine_tune_in_step_and_write_one_bundle(tt, tiny_bundle, small_folder, tmp_path):
    out = tmp_path / "clf"
    args = _tune_args(small_folder, tiny_bundle, tmp_path / "run", out, "--max-steps", "4", "--eval-every", "2",
                      "--batch-size", "2", "--finetune-mode", "partial")
    code, events, err = tt.torchrun("finetune", args)
    assert code == 0, err[-3000:]
    assert [e["event"] for e in events].count("start") == 1 and events[0]["world_size"] == 2
    done = events[-1]
    assert done["event"] == "done" and done["step"] == 4 and done["bundle"] == str(out)
    digests = done["weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # the replicas stayed identical
    assert (out / "manifest.json").is_file()


def test_fine_tuning_honours_gradient_accumulation_and_precision(tt, tiny_bundle, small_folder, tmp_path):
    code, events, err = tt.run("finetune", _tune_args(small_folder, tiny_bundle, tmp_path / "run", tmp_path / "clf",
                                                      "--max-steps", "2", "--eval-every", "0", "--grad-accum", "2",
                                                      "--amp", "bf16"))
    assert code == 0, err[-3000:]
    start, done = events[0], events[-1]
    assert start["amp"] == "bf16" and start["grad_scaler"] is False  # bf16 needs no scaler
    assert start["steps_per_epoch"] == (start["n_train"] // 4) // 2  # epochs count optimizer steps
    assert done["step"] == 2 and [e["step"] for e in events if e["event"] == "step"] == [1, 2]


def test_tuning_a_labelling_tab_csv_validates_on_the_labelling_tabs_patients(shared_data, labelling_csv, tmp_path):
    """The tower fine-tune ("Tune the tower from these labels…") splits a Labelling tab CSV as the probe does: its
    validation side is exactly the patients the Labelling tab measures its classifiers on."""
    from medflip_core.data.patient_sides import csv_validation_patients
    from medflip_core.finetune.dataset import LABELLING_RULE
    from trainer.config import TrainConfig
    from trainer.finetune import load_tune_data

    table = labelling_csv(tmp_path / "labels.csv")
    cfg = TrainConfig(job="finetune", images=[str(table)],
                      image_root=str(shared_data / "cxr-pneumonia-kermany" / "train"))
    tune = load_tune_data(cfg)
    assert tune.rule == LABELLING_RULE
    assert {tune.data.patients[i] for i in tune.val_idx} == csv_validation_patients(table)
    assert not {tune.data.patients[i] for i in tune.train_idx} & csv_validation_patients(table)
