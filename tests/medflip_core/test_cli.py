"""The `medflip` command line on real files, as a user runs it (a separate process, JSON on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medflip_core.bench import BENCHMARKS, run_benchmark
from medflip_core.cli import main
from medflip_core.errors import MedflipError
from medflip_core.evaluation.evaluate import read_per_image_csv
from medflip_core.metrics import roc_auc_binary


def medflip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_info_lists_dicom_without_patient_tags(shared_data, capsys):
    assert main(["info", str(shared_data / "dicom"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8
    uncr = next(r for r in rows if r["path"].endswith("RG1_UNCR.dcm"))
    assert uncr["photometric"] == "MONOCHROME1" and uncr["size"] == [1955, 1841]
    assert "PatientName" not in json.dumps(rows)


def test_info_on_a_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"not dicom at all")
    assert main(["info", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "scan.dcm" in out and "Traceback" not in out
    assert main(["info", str(tmp_path / "missing")]) == 2


def test_label_command(capsys):
    assert main(["label", "--json", "Small right pleural effusion. No pneumothorax."]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"] == {"Pleural Effusion": "positive"}


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_benchmark_in_the_table_answers_help(name, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", name, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: medflip bench {name}")


def test_bench_help_lists_the_table(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    for name, bench in BENCHMARKS.items():
        assert f"{name:<11} {bench.help}" in out


@pytest.mark.parametrize("order", ["json-first", "json-last"])
def test_bench_labeler_runs_through_the_table(shared_data, corpus, capsys, order):
    bench = ["labeler", "--reports", str(corpus)]
    argv = ["bench", "--json", *bench] if order == "json-first" else ["bench", *bench, "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert "IU X-ray" in out["data_set"] and out["n_reports"] > 3700


def test_unknown_benchmark_is_a_clear_error(capsys):
    with pytest.raises(MedflipError, match=r"unknown benchmark 'nope' \(known: labeler, throughput"):
        run_benchmark("nope", [])
    with pytest.raises(SystemExit) as stop:
        main(["bench", "nope"])
    assert stop.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_train_runs_the_trainer_process_and_returns_its_exit_code(corpus, tmp_path):
    proc = medflip("train", "pretrain", "--images", str(tmp_path / "missing"), "--corpus", str(corpus),
                   "--max-steps", "1", "--out-dir", str(tmp_path / "run"), check=False)
    assert proc.returncode == 2
    event = json.loads(proc.stdout.strip().splitlines()[-1])
    assert event["event"] == "error" and "does not exist" in event["message"]
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_classify_every_dicom_gives_scores_and_flags_non_chest(tiny_bundle, shared_data):
    proc = medflip("classify", str(shared_data / "dicom"), "--model", str(tiny_bundle), "--json",
                   "--labels", "No Finding,Pneumonia")
    out = json.loads(proc.stdout)
    assert "Research use only" in out["notice"]
    results = {r["path"].rsplit("/", 1)[-1]: r for r in out["results"]}
    assert len(results) == 8
    for r in results.values():
        assert "error" not in r
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert any("not a chest" in w for w in results["RG3_J2KI.dcm"]["warnings"])
    assert not any("not a chest" in w for w in results["RG1_UNCR.dcm"]["warnings"])
    assert any("not a human" in w for w in results["highdicom_dx_animal_lateral.dcm"]["warnings"])


@pytest.mark.slow
def test_classify_reports_unreadable_files_and_continues(tiny_bundle, shared_data, tmp_path):
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 200)
    good = shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"
    proc = medflip("classify", str(tmp_path / "broken.dcm"), str(good), "--model", str(tiny_bundle), "--json",
                   check=False)
    assert proc.returncode == 1
    results = json.loads(proc.stdout)["results"]
    assert "error" in results[0] and "scores" in results[1]


@pytest.mark.slow
def test_evaluate_and_retrieval_eval_json(tiny_bundle, small_folder, corpus, tmp_path):
    ev = json.loads(medflip("evaluate", str(small_folder), "--model", str(tiny_bundle), "--json",
                            "--positive", "PNEUMONIA", "--n-boot", "100").stdout)
    assert ev["images"] == 32 and ev["images_per_class"] == {"NORMAL": 16, "PNEUMONIA": 16}
    assert ev["label_texts"] == ["NORMAL", "PNEUMONIA"]
    lo, hi = ev["roc_auc"]["ci95"]
    assert 0 <= lo <= ev["roc_auc"]["value"] <= hi <= 1
    assert ev["data_set"].endswith(small_folder.name) and ev["seconds"] > 0
    per_image = tmp_path / "scores.csv"
    ev2 = json.loads(medflip("evaluate", str(small_folder), "--model", str(tiny_bundle), "--json", "--n-boot", "50",
                             "--prompt", "NORMAL=No Finding", "--prompt", "PNEUMONIA=Pneumonia",
                             "--per-image", str(per_image)).stdout)
    assert ev2["label_texts"] == ["No Finding", "Pneumonia"] and "per_image" not in ev2
    paths, truth, classes, probs = read_per_image_csv(per_image)
    assert classes == ["NORMAL", "PNEUMONIA"] and probs.shape == (32, 2)
    assert truth.count("NORMAL") == 16 and all(Path(p).parent.name == t for p, t in zip(paths, truth, strict=True))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # the CSV reproduces the reported AUC
    auc = roc_auc_binary(np.array(truth) == "PNEUMONIA", probs[:, 1])
    assert auc == pytest.approx(ev2["roc_auc_per_class"]["PNEUMONIA"]["value"], abs=1e-4)
    rr = json.loads(medflip("retrieval-eval", str(small_folder), "--corpus", str(corpus), "--model",
                            str(tiny_bundle), "--json", "--per-class", "30").stdout)
    assert rr["classes"] == {"NORMAL": "No Finding", "PNEUMONIA": "Pneumonia + Lung Opacity"}  # the class map
    assert rr["pool_reports"].startswith("WARNING")  # the tiny model trained on every report of the corpus
    assert rr["pool_size"] == 60 and set(rr["precision_at_k"]) == {"1", "2", "5", "10"}
    # P@K CIs resample patients (Kermany names carry the patient: fewer patients than images)
    assert rr["resampled"] == "patients" and rr["n_patients"] < rr["n_images"] == 32
    for k, value in rr["precision_at_k"].items():
        ci = rr["precision_at_k_ci"][k]
        assert ci["value"] == pytest.approx(value) and ci["ci95"][0] <= value <= ci["ci95"][1]


@pytest.mark.slow
def test_export_command_writes_a_loadable_bundle(trained_run, tmp_path):
    proc = medflip("export", str(trained_run), str(tmp_path / "b"), "--name", "cli-test", "--half-weights",
                   "--quantize-text")
    assert "bundle written" in proc.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["name"] == "cli-test" and manifest["weights_dtype"] == "float16"
    assert manifest["sentence_bank"]["corpus"] == "corpora/NLMCXR_reports.tgz"
    full = os.path.getsize(trained_run / "checkpoints" / os.listdir(trained_run / "checkpoints")[-1]
                           / "model.safetensors")
    assert os.path.getsize(tmp_path / "b" / "weights.safetensors") < 0.6 * full
    assert manifest["files"]["text_encoder.onnx"]["bytes"] < 40_000_000


def test_output_piped_into_a_reader_that_stops_early_is_no_traceback():
    """`medflip label ... | head -1`: the pipe closes before the output ends; the command stops quietly."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "medflip_core.cli", "label", "Small left pleural effusion."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before a line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "BrokenPipe" not in err and "Traceback" not in err, err


def test_a_windowed_executable_without_stdout_runs_a_command(monkeypatch):
    """A windowed Windows executable has sys.stdout None: the command still runs and says how it went."""
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["label", "Small left pleural effusion."]) == 0
    assert main(["label", "--json", "Small left pleural effusion."]) == 0


@pytest.mark.slow
def test_retrieve_from_a_users_corpus_tells_how_far_its_embedding_is(tiny_bundle, small_folder, tmp_path, capsys):
    sentences = [f"Small right pleural effusion, case {i}." for i in range(100)]
    sentences += [f"No acute cardiopulmonary abnormality, case {i}." for i in range(100)]
    corpus = tmp_path / "reports.txt"
    corpus.write_text("\n".join(sentences) + "\n")
    image = next(small_folder.rglob("*.jpeg"))
    assert main(["retrieve", str(image), "--corpus", str(corpus), "--model", str(tiny_bundle), "--k", "3",
                 "--json"]) == 0
    captured = capsys.readouterr()
    hits = json.loads(captured.out)["hits"]
    assert len(hits) == 3 and all(h["sentence"] in sentences for h in hits)
    lines = [x for x in captured.err.splitlines() if x.startswith("embedding the report sentences")]
    assert lines[0].endswith(": 0 / 200") and lines[-1].endswith(": 200 / 200")
    assert 2 <= len(lines) <= 11  # a line per tenth at most, not one per step


def test_classify_says_which_typed_labels_are_outside_the_models_labels(shared_data, capsys):
    film = str(shared_data / "dicom" / "RG1_UNCR.dcm")
    assert main(["classify", film, "--labels", "No Finding,Pneumonia,COVID-19"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("# warning: “COVID-19” is not one of the model's labels")
    assert main(["classify", film, "--labels", "No Finding,Pneumonia,COVID-19", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["uncalibrated_labels"] == ["COVID-19"] and set(data["results"][0]["scores"]) == {
        "No Finding", "Pneumonia", "COVID-19"}
    assert main(["classify", film, "--labels", "No Finding,Pneumonia"]) == 0
    assert "# warning" not in capsys.readouterr().out


def test_classify_notes_the_models_labels_no_validation_figure_backs(shared_data, capsys):
    film = str(shared_data / "dicom" / "RG1_UNCR.dcm")
    assert main(["classify", film, "--labels", "Pneumonia,Edema,Atelectasis"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("# note: Edema: not validated") and out[2].startswith("# note: Atelectasis: its zero")
    assert main(["classify", film, "--labels", "Pneumonia,Edema", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["unvalidated_labels"]) == ["Edema"]


def test_classify_notes_labels_whose_score_is_how_abnormal_the_film_looks(shared_data, capsys):
    film = str(shared_data / "dicom" / "RG1_UNCR.dcm")
    assert main(["classify", film, "--labels", "No Finding,COVID-19"]) == 0
    assert any(line.startswith("# note: COVID-19 ∥ abnormality: its score rises and falls with how abnormal")
               for line in capsys.readouterr().out.splitlines())
    assert main(["classify", film, "--labels", "No Finding,Pneumonia", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["abnormality_like_labels"] == {}  # the usual question: no note


def test_classify_of_nothing_readable_is_the_error_without_notes_about_scores(tmp_path, capsys):
    """An empty folder or a missing path: the error line, not a page of notes about scores nobody got."""
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "missing"):
        assert main(["classify", str(path), "--labels", "No Finding,Pneumonia,COVID-19,Edema"]) == 1
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("# model ") and len(out) == 2 and ": ERROR " in out[1]
