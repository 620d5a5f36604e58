"""`medflip bench findings`: the shipped model's zero-shot per NIH finding on real films, on the patients it held out
and those it trained on, never pooled; positives counted from the CSV itself; a CSV without NIH's findings refused."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medflip_core.bench import BENCHMARKS
from medflip_core.bench.findings import NINE_FINDINGS, _mean_auc, format_result, main, measure
from medflip_core.data.label_csv import validation_patients
from medflip_core.errors import MedflipError


def test_both_patient_sides_of_the_shipped_model_on_real_nih_films(shared_data, capsys):
    assert "findings" in BENCHMARKS
    data = shared_data / "cxr-nih-adult" / "labels.csv"
    assert main(["--data", str(data), "--limit", "200", "--n-boot", "40", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(data.open()))
    picked = [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, 200).round().astype(int))]
    held = validation_patients(data, 0.15, 0)  # the shipped model's training config: 15 %, seed 0
    sides = result["sides"]
    held_rows = [r for r in picked if r["Patient ID"] in held]
    assert sides["held_out"]["images"] == len(held_rows)
    assert sides["trained_on"]["images"] == len(picked) - len(held_rows)
    for name in NINE_FINDINGS:  # counted from the CSV's own 0/1 column, patient by patient
        positives = {r["Patient ID"] for r in picked if r["Patient ID"] not in held and r[name] == "1"}
        assert sides["trained_on"]["per_finding"][name]["positive_patients"] == len(positives)
    trained = sides["trained_on"]
    assert trained["findings_in_mean"] == list(NINE_FINDINGS)
    # the model's own behaviour on films whose findings it trained on: well above chance on the common findings
    for name in ("Edema", "Infiltration", "Atelectasis"):
        assert trained["per_finding"][name]["value"] > 0.65, name
    assert 0.65 < trained["mean"]["value"] < 1.0
    low, high = trained["mean"]["ci95"]
    assert low < trained["mean"]["value"] < high
    text = format_result(result)
    assert "NIH ChestX-ray14 adult sample" in text and "validation split of this file (15%, seed 0)" in text
    assert "patients it trained on (their findings were training labels: optimistic)" in text
    assert "intervals over patients" in text


def test_the_mean_is_over_the_findings_and_undefined_without_a_positive():
    truth = np.array([[1, 0], [0, 1], [0, 0], [1, 1]], bool)
    scores = np.array([[0.9, 0.5], [0.2, 0.8], [0.1, 0.3], [0.7, 0.4]])
    assert _mean_auc(truth, scores) == pytest.approx((1.0 + 0.75) / 2)
    assert np.isnan(_mean_auc(truth[[1, 2]], scores[[1, 2]]))


def test_a_csv_without_nih_findings_is_one_sentence(shared_data, tmp_path):
    films = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").glob("*.jpeg"))[:4]
    table = tmp_path / "chexpert.csv"
    table.write_text("Path,Atelectasis,Edema\n" + "".join(f"{p},{i % 2},0\n" for i, p in enumerate(films)))
    with pytest.raises(MedflipError, match="has no column for Cardiomegaly, Consolidation, Effusion"):
        measure(None, table, n_boot=10)
