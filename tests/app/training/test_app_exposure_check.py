"""The exposure check in the real window: a probe whose two classes come from two hospitals (pediatric Kermany
NORMAL films vs adult NIH films, a researcher's easy mistake) says, in the Classifier results view, that film
exposure alone separates them, with the classifier's figure beside it and the reason in words."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from medflip_core.events import EvalEvent

pytestmark = pytest.mark.slow
SHOTS = Path(os.environ.get("MEDFLIP_SCREENSHOTS", "/tmp/medflip-screenshots"))
PER_CLASS = 100


@pytest.fixture
def two_hospitals(shared_data, tmp_path) -> Path:
    root = tmp_path / "two-hospitals"
    (root / "NORMAL").mkdir(parents=True)
    (root / "ABNORMAL").mkdir()
    for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:PER_CLASS]:
        (root / "NORMAL" / f.name).symlink_to(f)
    patients: set[str] = set()
    with open(shared_data / "cxr-nih-adult" / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["Finding Labels"] != "No Finding" and row["Patient ID"] not in patients:
                patients.add(row["Patient ID"])
                (root / "ABNORMAL" / row["Image Index"]).symlink_to(
                    shared_data / "cxr-nih-adult" / "images" / row["Image Index"])
            if len(patients) == PER_CLASS:
                break
    return root


def test_two_hospitals_as_two_classes_are_flagged_in_the_results_view(window, two_hospitals, probe_in_training_tab):
    panel = probe_in_training_tab(window, two_hospitals)
    ev = next(e for e in panel.events if isinstance(e, EvalEvent))
    assert ev.metrics["exposure_check"].startswith("Film exposure alone separates")
    results = panel.results
    assert panel.views.currentWidget() is results
    check = results.figures["exposure_check"]
    assert check["flagged"] and results.exposure == check["message"]
    [name] = check["per_class"]
    assert check["per_class"][name]["ci95"][0] > 0.5
    text = results.summary.text()
    assert "⚠ Exposure check: Film exposure alone" in text and "acquisition" in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SHOTS / "training-classifier-exposure-check-1280x800.png"))
