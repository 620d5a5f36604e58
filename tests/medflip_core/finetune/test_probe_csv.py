"""Label CSVs (NIH style, real adult radiographs): loose class names, a multi-label probe with Platt calibration,
and the CSV errors a user meets, through `medflip finetune`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medflip_core.bundles.bundle import load_bundle
from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter
from medflip_core.finetune.dataset import load_labelled
from medflip_core.finetune.probe import ProbeConfig, run_probe
from medflip_core.imaging import load_image
from medflip_core.inference.engine import Engine

pytestmark = pytest.mark.slow
PER_GROUP = 24


@pytest.fixture(scope="module")
def nih(shared_data) -> Path:
    return shared_data / "cxr-nih-adult"


def _subset_csv(nih: Path, out: Path, groups: tuple[str, ...] = ("No Finding", "Pneumonia", "Infiltration|Pneumonia"),
                extra_rows: list[dict] | None = None) -> Path:
    with open(nih / "labels.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows, fields = list(reader), reader.fieldnames
    chosen = [r for g in groups for r in [r for r in rows if r["Finding Labels"] == g][:PER_GROUP]]
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen + (extra_rows or []))
    return out


def test_nih_csv_with_loose_names_is_multi_class_or_multi_label(nih, tmp_path):
    table = _subset_csv(nih, tmp_path / "labels.csv")
    two = load_labelled(table, image_root=nih / "images", labels=["pneumonia", "NORMAL"])
    assert two.classes == ["Pneumonia", "No Finding"] and not two.multi_label and len(two) == 3 * PER_GROUP
    three = load_labelled(table, image_root=nih / "images", labels=["Pneumonia", "infiltration", "No Finding"])
    assert three.multi_label and three.indicator().sum(axis=0).tolist() == [2 * PER_GROUP, PER_GROUP, PER_GROUP]
    assert all(p == path.name[:8] for p, path in zip(three.patients, three.paths, strict=True))
    with pytest.raises(MedflipError, match=r"unknown label of labels\.csv: Cardiomegaly"):
        load_labelled(table, image_root=nih / "images", labels=["Pneumonia", "Cardiomegaly"])


def test_multi_label_probe_from_a_csv(nih, tmp_path, shared_data):
    table = _subset_csv(nih, tmp_path / "labels.csv")
    out = tmp_path / "models" / "nih-probe"
    cfg = ProbeConfig(images=str(table), image_root=str(nih / "images"), out=str(out), n_boot=100,
                      labels=["Pneumonia", "Infiltration", "No Finding"], cache_dir=str(tmp_path / "cache"),
                      val_fraction=0.5)  # at least 10 validation patients with and without each label: Platt is fitted
    result = run_probe(cfg, EventWriter(enabled=False))
    m = load_bundle(out, verify=True).manifest
    clf = m["classifier"]
    assert clf["multi_label"] and clf["activation"] == "sigmoid" and clf["calibration"]["method"] == "platt"
    assert all(a > 0 for a in clf["calibration"]["scale"]) and "refused" not in clf["calibration"]
    assert m["validation"]["small_validation"] is None
    assert len(clf["calibration"]["shrink"]["weight"]) == 3  # one confidence cap per label
    assert m["provenance"]["data"]["kind"] == "label CSV"
    assert set(result.validation["confusion"]["labels"]) == {"Pneumonia", "Infiltration", "No Finding"}
    pred = Engine(out).predict([load_image(shared_data / "dicom" / "nih_dx_secondary_capture.dcm")])[0]
    assert pred.multi_label and all(0 <= p <= 1 for p in pred.probabilities.values())
    assert not np.isclose(sum(pred.probabilities.values()), 1.0)  # independent per-label probabilities


def test_missing_image_file_is_named_with_its_row(nih, tmp_path, capsys):
    from medflip_core.cli import main

    ghost = {"Image Index": "99999999_000.jpg", "Finding Labels": "Pneumonia", "Patient ID": "99999999"}
    table = _subset_csv(nih, tmp_path / "labels.csv", extra_rows=[ghost])
    code = main(["finetune", "--images", str(table), "--image-root", str(nih / "images"), "--out",
                 str(tmp_path / "m"), "--labels", "Pneumonia,No Finding", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "1 of" in captured.err and "missing" in captured.err and "row 74" in captured.err
    event = json.loads(captured.out.strip().splitlines()[-1])
    assert event["event"] == "error" and "99999999_000.jpg" in event["message"]
    assert not (tmp_path / "m").exists()


def test_unknown_values_and_columns_are_refused(nih, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Path,Pneumonia,No Finding\nimages/00001280_004.jpg,yes,0\n")
    with pytest.raises(MedflipError, match=r"unknown value.*Pneumonia='yes'"):
        load_labelled(bad, image_root=nih)
    odd = tmp_path / "odd.csv"
    odd.write_text("file,label\na.jpg,Pneumonia\n")
    with pytest.raises(MedflipError, match="neither NIH style"):
        load_labelled(odd, image_root=nih)
