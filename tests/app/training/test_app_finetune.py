"""Issue 10 items 6 and 7a in the real window: fine-tune a classifier (probe) from a folder in the Training tab,
the bundle is selected, a DICOM is classified with it (threshold marks, class-activation map), zero-shot one
click away with the right wording, and the Batch tab writes the classifier's decisions to CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from medflip_core.events import DoneEvent, EvalEvent

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("MEDFLIP_SCREENSHOTS", "/tmp/medflip-screenshots"))


@pytest.fixture(scope="module")
def kermany_40(kermany_folder) -> Path:
    """40 real Kermany training radiographs, 20 per class, as an ImageFolder (patients from the file names)."""
    return kermany_folder(20)


def shot(widget, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    assert widget.grab().save(str(path))
    return path


def test_zero_shot_says_whether_bars_are_exclusive_or_independent(window, qtbot, shared_data):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")])
    qtbot.waitUntil(lambda: window.current is not None, timeout=30000)
    panel = window.zero_shot
    panel.labels_edit.setPlainText("Pleural Effusion\nCardiomegaly\nAtelectasis")
    window.last_scores = {}
    panel.score_button.click()
    qtbot.waitUntil(lambda: set(window.last_scores) == {"Pleural Effusion", "Cardiomegaly", "Atelectasis"},
                    timeout=30000)
    assert "do not sum to 100 %" in panel.status.text() and "present vs absent" in panel.status.text()
    assert "(they sum to 100 %)" not in panel.status.text()
    panel.labels_edit.setPlainText("No Finding\nPneumonia")
    window.last_scores = {}
    panel.score_button.click()
    qtbot.waitUntil(lambda: set(window.last_scores) == {"No Finding", "Pneumonia"}, timeout=30000)
    assert sum(window.last_scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert "sum to 100 % across the labels" in panel.status.text()


def test_probe_from_a_folder_to_a_selected_classifier_that_scores_a_dicom_and_a_batch(
        window, qtbot, kermany_40, shared_data, tmp_path):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    base = window.engine.bundle.path
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    panel.form.job.setCurrentIndex(panel.form.job.findData("finetune"))
    form = panel.form
    assert form.mode.currentText() == "probe" and form.image_root.isVisible() and not form.corpus.isVisible()
    panel.form.images.setText(str(kermany_40))
    panel.status.start_button.click()
    assert panel.process is not None
    qtbot.waitUntil(lambda: panel.process is None, timeout=240000)
    assert not panel.last_error, panel.last_error
    assert isinstance(panel.events[-1], DoneEvent) and panel.events[-1].status == "completed"
    # live validation AUC per class from the job's eval event
    assert any(isinstance(e, EvalEvent) and "val_auc_per_class" in e.metrics for e in panel.events)
    assert set(panel.val_auc) == {"NORMAL", "PNEUMONIA"} and "ROC AUC per class" in panel.status.auc_label.text()
    # the bundle is in the user's models folder, listed and selected, and loaded as a classifier
    out = Path(panel.classifier_out)
    assert out.parent == Path(os.environ["MEDFLIP_DATA_DIR"]) / "models" and (out / "manifest.json").is_file()
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.path == out, timeout=60000)
    assert window.model_picker.currentData() == str(out) and window.engine.classifier is not None
    assert window.engine.bundle.manifest["base_model"]["path"] == str(base)
    # results view: validation ROC curves and the confusion matrix
    assert panel.views.currentWidget() is panel.results
    assert set(panel.results.curves) == {"NORMAL", "PNEUMONIA"}
    assert panel.results.confusion.rowCount() == 2 and panel.results.confusion.columnCount() == 2
    cells = [int(panel.results.confusion.item(i, j).text()) for i in range(2) for j in range(2)]
    assert sum(cells) == panel.results.figures["images"]
    results_shot = shot(window, "training-classifier-results-1280x800.png")

    # a DICOM classified with it: calibrated probabilities, thresholds marked, class-activation map
    zs = window.zero_shot
    window.tabs.setCurrentWidget(zs)
    assert zs.classifier_mode() and zs.mode_row.isVisible() and not zs.prompts.isVisible()
    window.open_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")])
    qtbot.waitUntil(lambda: window.last_prediction is not None, timeout=30000)
    pred = window.last_prediction
    assert set(pred.probabilities) == {"NORMAL", "PNEUMONIA"}
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(zs.bars) == {"NORMAL", "PNEUMONIA"}
    assert zs.bars["PNEUMONIA"].threshold == pytest.approx(pred.thresholds["PNEUMONIA"])
    assert "decision threshold" in zs.status.text()
    zs.heat_label.setCurrentText("PNEUMONIA")
    qtbot.waitUntil(lambda: window.viewer.overlay_scale.isVisible(), timeout=30000)
    assert "classifier head" in window.viewer.overlay_note.toolTip()
    assert "PNEUMONIA: heat-map (class activation)" in window.viewer.overlay_note.full_text()
    zero_shot_shot = shot(window, "zero-shot-tab-classifier-1280x800.png")
    # zero-shot is one click away (the base model's text encoder is in the bundle)
    zs.use_zero_shot.click()
    assert zs.prompts.isVisible()
    zs.labels_edit.setPlainText("No Finding\nPneumonia")
    window.last_scores = {}
    zs.score_button.click()
    qtbot.waitUntil(lambda: set(window.last_scores) == {"No Finding", "Pneumonia"}, timeout=30000)
    assert "Zero-shot" in zs.status.text()
    zs.use_classifier.click()

    # the Batch tab scores a folder with the classifier and writes its decisions to CSV
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("rsna_cr_chest_jpeg_baseline.dcm", "RG1_UNCR.dcm"):
        (folder / name).symlink_to(shared_data / "dicom" / name)
    window.tabs.setCurrentWidget(window.batch)
    window.score_folder(str(folder))
    qtbot.waitUntil(lambda: len(window.batch.rows) == 2, timeout=60000)
    headers = [window.batch.table.horizontalHeaderItem(i).text() for i in range(window.batch.table.columnCount())]
    assert headers[:5] == ["File", "Top label", "NORMAL", "PNEUMONIA", "Decision"]
    window.batch.export_to(str(tmp_path / "decisions"))
    with open(tmp_path / "decisions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {r["file"] for r in rows} == {"rsna_cr_chest_jpeg_baseline.dcm", "RG1_UNCR.dcm"}
    for r in rows:
        assert r["decision: NORMAL"] in ("0", "1") and r["decision: PNEUMONIA"] in ("0", "1")
        assert float(r["NORMAL"]) + float(r["PNEUMONIA"]) == pytest.approx(1.0, abs=2e-4)
    print("screenshots:", results_shot, zero_shot_shot)


def test_bad_fine_tuning_input_is_reported_and_leaves_no_bundle(window, qtbot, tmp_path):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    panel = window.training
    panel.form.job.setCurrentIndex(panel.form.job.findData("finetune"))
    assert panel.form.decoding.isHidden()  # the trainer's loader flags: not a fine-tuning option
    bad = tmp_path / "labels.csv"
    bad.write_text("Image Index,Finding Labels,Patient ID\nmissing.png,Pneumonia,1\n")
    panel.form.images.setText(str(bad))
    panel.start()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    assert panel.last_error and "Training failed" in window.last_error
    assert not Path(panel.classifier_out).exists()
    assert not panel.status.resume_button.isEnabled()


def test_partial_fine_tuning_from_the_gui_ends_in_a_selected_classifier_without_zero_shot(
        window, qtbot, kermany_40, shared_data):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    panel.form.job.setCurrentIndex(panel.form.job.findData("finetune"))
    panel.form.mode.setCurrentText("partial")
    panel.form.budget.setValue(0.3)  # minutes: a few steps of the real default model's top blocks on this CPU
    panel.form.images.setText(str(kermany_40))
    panel.status.start_button.click()
    assert panel.process is not None and "--mode partial" in " ".join(panel._finetune_args)
    qtbot.waitUntil(lambda: panel.process is None, timeout=600000)
    assert not panel.last_error, panel.last_error
    done = panel.events[-1]
    assert isinstance(done, DoneEvent) and done.status == "completed"
    assert set(panel.val_auc) == {"NORMAL", "PNEUMONIA"}
    out = Path(panel.classifier_out)
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.path == out, timeout=60000)
    clf = window.engine.bundle.manifest["classifier"]
    assert clf["mode"] == "partial" and clf["zero_shot"] is False
    assert set(panel.results.curves) == {"NORMAL", "PNEUMONIA"}
    window.tabs.setCurrentWidget(window.zero_shot)
    window.open_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")])
    qtbot.waitUntil(lambda: window.last_prediction is not None, timeout=30000)
    assert sum(window.last_prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert not window.zero_shot.use_zero_shot.isEnabled()  # the tuned tower left the text embedding space
    shot(window, "training-partial-classifier-1280x800.png")
