"""A real short training run started from the Training tab: events reach the plots, cancel and crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medflip_core.events import DoneEvent, ErrorEvent, EvalEvent, StartEvent
from medflip_core.imaging import load_image

pytestmark = pytest.mark.slow

SMALL = ["--max-sentences", "300", "--val-fraction", "0.25", "--max-val-images", "8", "--eval-every", "0",
         "--warmup-steps", "1"]


def setup_panel(panel, small_folder, corpus):
    panel.images.setText(str(small_folder))
    panel.corpus.setText(str(corpus))
    panel.batch.setValue(4)
    panel.image_size.setValue(112)
    panel.max_steps.setValue(400)
    panel.budget.setValue(30)


def test_run_events_reach_the_plots_and_cancel_keeps_a_checkpoint(window, qtbot, small_folder, corpus):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: len(panel.series["loss"][0]) >= 2, timeout=180000)
    xs, ys = panel.curves["loss"].getData()
    assert len(xs) >= 2 and all(y > 0 for y in ys)
    assert len(panel.series["sigma1_pos"][0]) >= 1
    assert "samples/s" in panel.stats.text()
    panel.cancel()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    done = panel.events[-1]
    assert isinstance(done, DoneEvent) and done.status == "cancelled"
    assert "cancelled" in panel.stats.text()
    assert panel.resume_button.isEnabled()


def test_a_crashed_trainer_leaves_the_gui_working_with_the_error_shown(window, qtbot, small_folder, corpus):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: len(panel.series["loss"][0]) >= 1, timeout=180000)
    panel.process.kill()  # what an out-of-memory kill or a segfault looks like from the GUI
    qtbot.waitUntil(lambda: panel.process is None, timeout=60000)
    assert "failed" in panel.stats.text().lower()
    assert "Training failed" in window.last_error
    assert panel.start_button.isEnabled()


def test_bad_folder_is_reported_from_the_trainer(window, qtbot, tmp_path, corpus):
    panel = window.training
    panel.images.setText(str(tmp_path / "does-not-exist"))
    panel.corpus.setText(str(corpus))
    panel.max_steps.setValue(1)
    panel.start()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    assert "does not exist" in panel.last_error and "does not exist" in window.last_error


def test_finetune_from_the_model_in_the_picker(window, qtbot, small_folder, tiny_bundle):
    window.use_model_folder(str(tiny_bundle))
    qtbot.waitUntil(lambda: window.engine is not None, timeout=30000)
    panel = window.training
    panel.job.setCurrentText("finetune")
    panel.images.setText(str(small_folder))
    panel.batch.setValue(4)
    panel.max_steps.setValue(2)
    args = panel.build_args(resume=False)
    assert args[args.index("--init-from") + 1] == str(tiny_bundle)
    panel.start(extra=["--val-fraction", "0.25", "--warmup-steps", "0"])
    qtbot.waitUntil(lambda: panel.process is None, timeout=240000)
    assert isinstance(panel.events[0], StartEvent) and isinstance(panel.events[-1], DoneEvent), panel.last_error
    assert not any(isinstance(e, ErrorEvent) for e in panel.events)
    # the model's shape (input size 112, not the form's 224) came from the bundle's manifest
    assert panel.events[0].config["model"]["image_size"] == 112
    assert any(isinstance(e, EvalEvent) and "per_class" in e.metrics for e in panel.events)


def test_a_finished_pretraining_run_becomes_a_model_in_the_picker(window, qtbot, small_folder, corpus, shared_data):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.max_steps.setValue(3)
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: panel.process is None, timeout=240000)
    assert isinstance(panel.events[-1], DoneEvent) and panel.events[-1].status == "completed", panel.last_error
    # the export runs in its own process, then the new bundle is selected and loaded as the engine
    qtbot.waitUntil(lambda: (window.model_picker.currentData() or "").endswith(Path(panel.run_dir).name),
                    timeout=300000)
    exported = Path(window.model_picker.currentData())
    assert exported.parent == Path(os.environ["MEDFLIP_DATA_DIR"]) / "models"
    assert (exported / "manifest.json").is_file() and (exported / "image_encoder.onnx").is_file()
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.path == exported, timeout=60000)
    emb = window.engine.embed_images([load_image(shared_data / "dicom" / "RG1_J2KR.dcm")]).embedding
    scores = window.engine.classify(emb, ["No Finding", "Pneumonia"])
    assert set(scores) == {"No Finding", "Pneumonia"} and abs(sum(scores.values()) - 1.0) < 1e-4
