"""Issue 31 items 7 and 8 in the real window: the progress bar only moves forward and is never 100 % beside a
start or a failure; a completed run cannot be resumed (it would export over its model); closing during training
asks first, and the next start offers the unfinished run with its own settings in the form."""

from __future__ import annotations

import json

import pytest
from PySide6 import QtCore, QtWidgets

from medflip_core.events import StepEvent, event_from_record

pytestmark = pytest.mark.slow
SMALL = ["--max-sentences", "300", "--val-fraction", "0.25", "--max-val-images", "8", "--eval-every", "0",
         "--warmup-steps", "1"]


def answer_close_question(window, button_text: str) -> None:
    """Click a button of the question the window asks before it closes, as soon as it is up."""

    def click() -> None:
        box = window.close_question
        if box is None:
            QtCore.QTimer.singleShot(20, click)
            return
        for button in box.buttons():
            if button.text().replace("&", "") == button_text:
                button.click()
                return
        raise AssertionError([b.text() for b in box.buttons()])

    QtCore.QTimer.singleShot(20, click)


def test_item7_progress_never_goes_back_and_is_not_100_beside_a_start_or_a_failure(window, qtbot, tmp_path,
                                                                                   corpus):
    panel = window.training
    start = {"event": "start", "job": "pretrain", "config": {}, "device": "cpu", "world_size": 1, "n_train": 100,
             "n_val": 10, "steps_per_epoch": 25, "total_steps": 1000, "budget_s": 600.0}
    window.messages.show_message("Training failed: an earlier start's error", source="training")
    panel.handle_event(event_from_record(start))
    # the trainer said it started: the status says so (it read "Starting the trainer…" until the first step ended,
    # a minute on a CPU), and the earlier start's error leaves the window's message bar
    assert panel.status.stats.text().startswith("Started on cpu: 100 training images, 10 validation.")
    assert window.messages.text() == ""
    seen = []
    # the steps slow down: the ETA grows faster than the time spent (32 % at step 429, 21 % at step 556 before)
    for step, elapsed, eta in ((100, 40, 300), (429, 100, 212), (556, 200, 752), (700, 320, 900)):
        record = {"event": "step", "step": step, "epoch": 1, "loss": 1.0, "lr": 1e-4, "samples_per_s": 4.0,
                  "eta_s": eta, "total_steps": 1000, "elapsed_s": elapsed}
        panel.handle_event(event_from_record(record))
        seen.append(panel.status.progress.value())
    assert seen == sorted(seen) and seen[-1] == 70, seen  # step 700 of 1000 (the larger share done)
    panel.handle_event(event_from_record({"event": "done", "status": "completed", "step": 1000, "checkpoint": None}))
    assert panel.status.progress.value() == 100
    panel.form.images.setText(str(tmp_path / "missing"))
    panel.form.corpus.setText(str(corpus))
    panel.start()
    assert "Starting" in panel.status.stats.text() and panel.status.progress.value() == 0
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    assert panel.last_error and panel.status.progress.value() < 100


@pytest.fixture(scope="module")
def completed_run(small_folder, corpus, tmp_path_factory, tt):
    """A real 2-step pre-training run that completed, its events kept in the run folder."""
    run = tmp_path_factory.mktemp("runs31") / "run"
    run.mkdir()
    code, _, stderr = tt.run("pretrain", tt.args(small_folder, corpus, run, "--max-steps", "2",
                                                 "--events", str(run / "events.jsonl")))
    assert code == 0, stderr[-2000:]
    return run


def test_item8_a_completed_run_is_not_resumable(window, qtbot, completed_run):
    panel = window.training
    assert not panel.resume_folder(str(completed_run))
    assert panel.process is None and "already completed" in window.last_error
    panel.run_dir = str(completed_run)
    panel._job_changed()
    assert not panel.status.resume_button.isEnabled()


def test_item8_closing_during_training_asks_and_the_next_start_offers_the_run_with_its_settings(
        qtbot, small_folder, corpus):
    from app.window.main_window import MainWindow

    window = MainWindow()
    window.ask_before_closing = True  # as on a desktop (offscreen, nobody could answer)
    window.resize(1280, 800)
    window.show()
    panel = window.training
    panel.form.images.setText(str(small_folder))
    panel.form.corpus.setText(str(corpus))
    panel.form.batch.setValue(4)
    panel.form.image_size.setValue(112)
    panel.form.max_steps.setValue(400)
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: any(isinstance(e, StepEvent) for e in panel.events), timeout=300000)
    run = panel.run_dir
    answer_close_question(window, "Cancel")
    window.close()
    assert window.isVisible() and panel.process is not None  # Cancel: nothing stopped
    answer_close_question(window, "Stop and close")
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60000)
    assert panel.process is None

    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    form = again.training.form
    assert again.training.run_dir == run and again.training.status.resume_button.isEnabled()
    assert "Resume continues it" in again.training.status.stats.text()
    assert "when MedFLIP Studio closed" in again.training.status.stats.text()
    assert form.images.text() == str(small_folder) and form.batch.value() == 4 and form.image_size.value() == 112
    # Resume folder… shows the run's settings, not the defaults, before it starts
    form.batch.setValue(32)
    form.image_size.setValue(224)
    assert again.training.resume_folder(run)
    assert form.batch.value() == 4 and form.image_size.value() == 112 and form.max_steps.value() == 400
    again.training.cancel()
    qtbot.waitUntil(lambda: again.training.process is None, timeout=120000)
    config = json.loads((__import__("pathlib").Path(run) / "config.json").read_text())
    assert config["batch_size"] == 4
    # cancelled by the user, then the app closed: the next start says so (a GUI walk read "stopped … when MedFLIP
    # Studio closed" for a run it had cancelled itself)
    again.close()
    third = MainWindow()
    qtbot.addWidget(third)
    assert third.training.run_dir == run and third.training.status.resume_button.isEnabled()
    assert " was cancelled at step " in third.training.status.stats.text()
    assert "closed" not in third.training.status.stats.text()
    third.close()  # offered, not resumed: the next start says the same, not "cancelled" or "closed" afresh
    fourth = MainWindow()
    qtbot.addWidget(fourth)
    assert " was cancelled at step " in fourth.training.status.stats.text()
    QtWidgets.QApplication.processEvents()


def test_fine_tuning_shows_its_one_loss_not_the_pretraining_plots(window, qtbot):
    """A GUI walk saw the contrastive, SVD and σ₁ keys beside a fine-tuning job, which reports none of them."""
    from app.training.run_folders import FINETUNE, PRETRAIN

    panel = window.training
    window.tabs.setCurrentWidget(panel)
    window.show()
    form, plots = panel.form, panel.plots
    form.job.setCurrentIndex(form.job.findData(FINETUNE))
    assert not plots.sigma_plot.isVisible() and "contrastive" not in plots.loss_plot.plotItem.titleLabel.text
    form.job.setCurrentIndex(form.job.findData(PRETRAIN))
    qtbot.waitUntil(plots.sigma_plot.isVisible, timeout=5000)
    assert "contrastive" in plots.loss_plot.plotItem.titleLabel.text
    assert "σ₁" in plots.sigma_plot.plotItem.titleLabel.text
