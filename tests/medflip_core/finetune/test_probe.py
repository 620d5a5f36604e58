"""The probe end to end on 60 real chest X-rays (plus one broken file): events, cache, bundle, engine, CLI,
cancel and resume, no half-written bundle, no torch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medflip_core.bundles.bundle import load_bundle
from medflip_core.bundles.model_store import default_model_dir
from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter, event_from_record
from medflip_core.finetune import classifier_bundle
from medflip_core.finetune.probe import ProbeConfig, run_probe
from medflip_core.imaging import load_image
from medflip_core.inference.engine import Engine

REPO = Path(__file__).resolve().parents[3]
PER_CLASS = 30
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(kermany_folder) -> Path:
    """30 NORMAL + 30 PNEUMONIA Kermany images (several per patient) and one file that is not an image."""
    root = kermany_folder(PER_CLASS)
    (root / "PNEUMONIA" / "person9999_broken_1.jpeg").write_bytes(b"this is not a JPEG")
    return root


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def first_run(folder, tmp_path_factory):
    work = tmp_path_factory.mktemp("probe_run")
    cfg = ProbeConfig(images=str(folder), out=str(work / "models" / "pneumonia-probe"), labels=["Pneumonia", "Normal"],
                      cache_dir=str(work / "cache"), n_boot=200, val_fraction=0.25)
    events = EventWriter(str(work / "events.jsonl"))
    result = run_probe(cfg, events)
    events.close()
    return cfg, result, _events(work / "events.jsonl")


def test_probe_events_and_skipped_file(first_run):
    _, result, events = first_run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "eval" in kinds and kinds.count("step") >= 2
    start, done = events[0], events[-1]
    assert start["classes"] == ["PNEUMONIA", "NORMAL"] and start["mode"] == "probe"
    assert done["status"] == "completed" and done["embedded"] == 2 * PER_CLASS + 1 and done["skipped_images"] == 1
    assert "person9999_broken_1.jpeg" in done["skipped_examples"][0] and done["checkpoint"] is None
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["step"] == steps[-1]["total_steps"] == 2 * PER_CLASS + 1 and steps[-1]["loss"] is None
    evals = [e for e in events if e["event"] == "eval"]
    assert set(evals[0]["val_auc_per_class"]) == {"PNEUMONIA", "NORMAL"} and 0 <= evals[0]["val_auc"] <= 1
    # the GUI reads the same lines back as the trainer's typed events
    typed = [event_from_record(e) for e in events]
    assert all(t is not None for t in typed) and typed[0].n_train + typed[0].n_val == 2 * PER_CLASS + 1
    # the bundled model separates pediatric pneumonia (validation AUC 0.92): a probe on its embeddings must
    # beat chance clearly even on this small split (about 12 validation images)
    assert result.validation["per_class"]["PNEUMONIA"]["roc_auc"]["value"] > 0.7


def test_bundle_is_complete_verified_and_documented(first_run):
    _, result, _ = first_run
    bundle = load_bundle(result.bundle, verify=True)
    m = bundle.manifest
    assert bundle.is_classifier and m["classifier"]["classes"] == ["PNEUMONIA", "NORMAL"]
    assert not m["classifier"]["multi_label"]
    # about 5 pneumonia patients on the validation side: too few to fit a temperature (test_small_validation.py
    # has the fitted case), so it is refused, and the confidence cap is kept in the manifest
    calibration = m["classifier"]["calibration"]
    assert calibration["method"] == "none" and calibration["refused"] == ["PNEUMONIA", "NORMAL"]
    assert 0 < calibration["shrink"]["weight"] < 1 and m["validation"]["small_validation"]["classes"]
    assert set(m["classifier"]["thresholds"]) == {"PNEUMONIA", "NORMAL"}
    assert m["classifier"]["zero_shot"] and m["classifier"]["mode"] == "probe"
    for name in ("image_encoder.onnx", "text_encoder.onnx", "tokenizer/tokenizer.json", "sentence_bank.npz",
                 "head.npz", "validation.json", "MODEL_CARD.md"):
        assert len(m["files"][name]["sha256"]) == 64
    base = load_bundle(default_model_dir(), verify=False)
    assert m["files"]["image_encoder.onnx"]["sha256"] == base.manifest["files"]["image_encoder.onnx"]["sha256"]
    prov = m["provenance"]
    assert prov["data"]["images_used"] == 2 * PER_CLASS and prov["data"]["images_skipped"] == 1
    assert len(prov["data"]["sha256"]) == 64 and prov["config"]["val_fraction"] == 0.25
    card = bundle.model_card()
    assert "Research use only" in card and "bootstrap over patients" in card and "Youden" in card
    assert f"{prov['data']['val_patients']} patients" in card
    figures = json.loads((result.bundle / "validation.json").read_text())
    curve = figures["per_class"]["PNEUMONIA"]["roc_curve"]
    assert curve["fpr"][0] == 0.0 and curve["tpr"][-1] == 1.0
    # train and validation patients are disjoint
    assert prov["data"]["train_patients"] + prov["data"]["val_patients"] == prov["data"]["patients"]
    # the exposure check: film brightness alone, on the same patients, beside the classifier's AUC (one class of
    # two: the operating point's)
    check = m["validation"]["exposure_check"]
    assert list(check["per_class"]) == ["PNEUMONIA"] and 0 <= check["per_class"]["PNEUMONIA"]["roc_auc"] <= 1
    assert check["per_class"]["PNEUMONIA"]["classifier_roc_auc"] == m["validation"]["per_class"]["PNEUMONIA"][
        "roc_auc"]["value"]
    assert "## Exposure check" in card and check["message"] in card


def test_second_run_comes_from_the_cache_and_gives_the_same_head(first_run, tmp_path):
    cfg, result, _ = first_run
    again = ProbeConfig(**{**cfg.to_dict(), "out": str(tmp_path / "again")})
    second = run_probe(again, EventWriter(enabled=False))
    assert second.embedded == 0 and second.status == "completed"
    np.testing.assert_allclose(second.classifier.weight, result.classifier.weight)
    assert second.skipped == result.skipped  # the broken file is remembered as unreadable too


def test_exposure_is_cached_and_filled_in_for_a_cache_written_without_it(first_run, tmp_path):
    """A cache from before the exposure check (shards without exposure numbers) still serves the embeddings;
    the films are read once more for their two numbers, which are cached from then on."""
    from medflip_core.finetune.embedding_cache import EmbeddingCache

    cfg, result, _ = first_run
    [key_dir] = [d for d in Path(cfg.cache_dir).iterdir() if d.is_dir()]
    cache = EmbeddingCache(cfg.cache_dir, key_dir.name)
    assert len(cache.exposure) == len(cache.embeddings) == 2 * PER_CLASS  # every readable film, none for the broken
    old = tmp_path / "old-cache"
    EmbeddingCache(old, key_dir.name).add(cache.embeddings, cache.failed)  # as an earlier version wrote it
    assert EmbeddingCache(old, key_dir.name).exposure == {}
    again = run_probe(ProbeConfig(**{**cfg.to_dict(), "out": str(tmp_path / "again"), "cache_dir": str(old)}),
                      EventWriter(enabled=False))
    assert again.embedded == 0 and again.validation["exposure_check"] == result.validation["exposure_check"]
    refilled = EmbeddingCache(old, key_dir.name).exposure
    assert set(refilled) == set(cache.exposure)
    assert all(np.allclose(refilled[k], cache.exposure[k]) for k in refilled)


def test_engine_classifies_a_real_dicom_with_the_bundle(first_run, shared_data):
    _, result, _ = first_run
    engine = Engine(result.bundle)
    pred = engine.predict([load_image(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")])[0]
    assert list(pred.probabilities) == ["PNEUMONIA", "NORMAL"]
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    for c, p in pred.probabilities.items():
        assert pred.decisions[c] == (p >= pred.thresholds[c])
    cam = engine.class_activation_map(pred.patch_tokens, "PNEUMONIA")
    assert cam.shape == engine.grid == (14, 14) and np.isfinite(cam).all() and cam.std() > 0
    # the probe keeps the base model's encoder, so its chest-film reference holds: the embedding OOD check works
    assert engine.ood_reference is not None and engine.bundle.manifest["classifier"]["ood_reference"] is True
    assert "and the image embedding" in (result.bundle / "MODEL_CARD.md").read_text()
    # the probe keeps the base model's text side: zero-shot and retrieval work from the same bundle
    zero_shot = engine.classify(pred.embedding, ["No Finding", "Pneumonia"])
    assert sum(zero_shot.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(engine.retrieve(pred.embedding, k=3)) == 3
    with pytest.raises(MedflipError, match="not a class"):
        engine.class_activation_map(pred.patch_tokens, "Cardiomegaly")


def test_a_clip_bundle_says_it_is_no_classifier():
    engine = Engine(default_model_dir(), verify=False)
    with pytest.raises(MedflipError, match="not a classifier"):
        engine.predict([np.zeros((64, 64), np.float32)])


def test_cli_classify_and_evaluate_a_classifier_bundle(first_run, folder, shared_data, capsys, monkeypatch, tmp_path):
    from medflip_core.cli import main

    _, result, _ = first_run
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path))
    dicom = shared_data / "dicom" / "RG1_J2KR.dcm"
    assert main(["classify", str(dicom), "--model", str(result.bundle), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "classifier" and out["classes"] == ["PNEUMONIA", "NORMAL"]
    row = out["results"][0]
    assert set(row["scores"]) == set(row["decisions"]) == {"PNEUMONIA", "NORMAL"}
    assert main(["evaluate", str(folder), "--model", str(result.bundle), "--positive", "pneumonia",
                 "--n-boot", "100", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["positive_class"] == "PNEUMONIA" and ev["images"] == 2 * PER_CLASS and ev["skipped"] == 1
    assert ev["roc_auc"]["ci95"][0] <= ev["roc_auc"]["value"] <= ev["roc_auc"]["ci95"][1]
    assert sum(map(sum, ev["confusion"]["rows_true_cols_pred"])) == 2 * PER_CLASS
    assert 0 <= ev["ece"]["value"] <= 1 and "sensitivity" in ev["per_class"]["NORMAL"]


def test_failed_write_leaves_no_bundle_and_keeps_the_old_one(first_run, tmp_path, monkeypatch):
    cfg, result, _ = first_run
    models = tmp_path / "models"
    models.mkdir()
    target = models / "probe"
    copies = []

    def copy_then_disk_full(src, dst, *a, **k):
        if copies:
            raise OSError(28, "No space left on device")
        copies.append(dst)
        return shutil.copy(src, dst)

    monkeypatch.setattr(classifier_bundle.shutil, "copy2", copy_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        run_probe(ProbeConfig(**{**cfg.to_dict(), "out": str(target)}), EventWriter(enabled=False))
    assert list(models.iterdir()) == []  # no bundle, no hidden partial folder
    shutil.copytree(result.bundle, target)
    copies.clear()
    with pytest.raises(OSError, match="No space left"):
        run_probe(ProbeConfig(**{**cfg.to_dict(), "out": str(target), "overwrite": True}), EventWriter(enabled=False))
    assert [p.name for p in models.iterdir()] == ["probe"]
    load_bundle(target, verify=True)  # the previous bundle is untouched


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "medflip_core.cli", *args]


def test_sigterm_stops_cleanly_and_a_rerun_resumes_from_the_cache(folder, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "MEDFLIP_DATA_DIR": str(tmp_path)}
    out = tmp_path / "models" / "probe"
    args = _cli("finetune", "--images", str(folder), "--out", str(out), "--n-boot", "50", "--json")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and events[-1]["step"] > 0:
            proc.send_signal(signal.SIGTERM)
            break
    rest, err = proc.communicate(timeout=120)
    events += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, err
    done = events[-1]
    assert done["event"] == "done" and done["status"] == "cancelled" and done["bundle"] is None
    models = tmp_path / "models"
    assert not out.exists() and (not models.exists() or list(models.iterdir()) == [])
    first_embedded = done["embedded"]
    assert 0 < first_embedded < 2 * PER_CLASS + 1
    again = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert again.returncode == 0, again.stderr
    events2 = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert events2[1]["event"] == "step" and events2[1]["cached"] >= first_embedded
    assert events2[-1]["status"] == "completed" and events2[-1]["embedded"] == 2 * PER_CLASS + 1 - first_embedded
    load_bundle(out, verify=True)


def test_probe_and_classifier_never_import_torch(first_run, folder, shared_data, tmp_path):
    cfg, _, _ = first_run
    code = (
        "import sys, json\n"
        "from medflip_core.events import EventWriter\n"
        "from medflip_core.finetune.probe import ProbeConfig, run_probe\n"
        "from medflip_core.inference.engine import Engine\n"
        "from medflip_core.imaging import load_image\n"
        f"cfg = ProbeConfig(**{ {**cfg.to_dict(), 'out': str(tmp_path / 'b')}!r})\n"
        "r = run_probe(cfg, EventWriter(enabled=False))\n"
        f"p = Engine(r.bundle).predict([load_image({str(shared_data / 'dicom' / 'RG1_UNCR.dcm')!r})])[0]\n"
        "print(json.dumps({'status': r.status, 'torch': 'torch' in sys.modules,\n"
        "                  'transformers': 'transformers' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"status": "completed", "torch": False,
                                                                "transformers": False}


def test_time_budget_stops_resumably_without_a_bundle(folder, tmp_path):
    cfg = ProbeConfig(images=str(folder), out=str(tmp_path / "m" / "probe"), cache_dir=str(tmp_path / "cache"),
                      budget_minutes=1e-6)
    result = run_probe(cfg, EventWriter(enabled=False))
    assert result.status == "cancelled" and result.bundle is None and not (tmp_path / "m").exists()


def test_bundle_without_text_side_scores_its_classes_only(first_run, shared_data, tmp_path):
    from medflip_core.finetune.classifier_bundle import write_classifier_bundle

    _, result, _ = first_run
    m = load_bundle(result.bundle).manifest
    fields = {k: m[k] for k in ("base_model", "provenance", "validation")}
    fields["classifier"] = {k: m["classifier"][k] for k in ("threshold_rule", "head_fit", "mode")}
    base = load_bundle(default_model_dir(), verify=False)
    tower = tmp_path / "tuned_image_encoder.onnx"
    shutil.copy(base.file("image_encoder.onnx"), tower)  # stands in for an exported fine-tuned tower (same graph)
    with pytest.raises(MedflipError, match="text embedding space"):
        write_classifier_bundle(tmp_path / "x", base, result.classifier, fields, result.validation, image_encoder=tower)
    out = write_classifier_bundle(tmp_path / "own-classes", base, result.classifier, fields, result.validation,
                                  keep_text=False, image_encoder=tower)
    bundle = load_bundle(out, verify=True)
    assert "text_encoder.onnx" not in bundle.manifest["files"] and not bundle.manifest["classifier"]["zero_shot"]
    assert "no text encoder" in bundle.model_card()
    engine = Engine(out)
    pred = engine.predict([load_image(shared_data / "dicom" / "RG1_J2KI.dcm")])[0]
    assert list(pred.probabilities) == ["PNEUMONIA", "NORMAL"]
    with pytest.raises(MedflipError, match="no text encoder"):
        engine.classify(pred.embedding, ["Pneumonia", "No Finding"])


def test_a_labelling_tab_csv_probe_is_measured_on_the_labelling_validation_patients(shared_data, labelling_csv,
                                                                                     tmp_path):
    """The Labelling tab's 'Tune the tower from these labels…' and the terminal line it prints run this on its
    labels.csv: the classifier is judged on the patients the Labelling tab keeps for validation, and its card and
    the trainer log say so."""
    from medflip_core.data.patient_sides import csv_validation_patients
    from medflip_core.finetune.dataset import LABELLING_RULE

    kermany = shared_data / "cxr-pneumonia-kermany" / "train"
    table = labelling_csv(tmp_path / "labels.csv", per_class=16)
    cfg = ProbeConfig(images=str(table), image_root=str(kermany), out=str(tmp_path / "models" / "labelled"),
                      cache_dir=str(tmp_path / "cache"), n_boot=50)
    events = EventWriter(str(tmp_path / "events.jsonl"))
    result = run_probe(cfg, events)
    events.close()
    start = _events(tmp_path / "events.jsonl")[0]
    held = csv_validation_patients(table)
    assert start["validation_rule"] == LABELLING_RULE and start["n_val"] == len(held)  # one film per patient
    assert start["device"] == "cpu"  # the trainer's word, not ONNX Runtime's "CPUExecutionProvider" (a GUI walk)
    m = load_bundle(result.bundle).manifest
    assert m["provenance"]["data"]["split"] == LABELLING_RULE and m["provenance"]["data"]["val_patients"] == len(held)
    assert "validation side: the Labelling tab's validation patients" in (result.bundle / "MODEL_CARD.md").read_text()
    # the results view's data set says the same (a GUI walk read "validation split of labels.csv" there)
    assert result.validation["data_set"].startswith("the Labelling tab's validation patients of")
