"""A real short training run started from the Training tab: events reach the plots, cancel and crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medflip_core.events import DoneEvent, StartEvent, StepEvent
from medflip_core.imaging import load_image

pytestmark = pytest.mark.slow

SMALL = ["--max-sentences", "300", "--val-fraction", "0.25", "--max-val-images", "8", "--eval-every", "0",
         "--warmup-steps", "1"]


def setup_panel(panel, small_folder, corpus):
    panel.form.images.setText(str(small_folder))
    panel.form.corpus.setText(str(corpus))
    panel.form.batch.setValue(4)
    panel.form.image_size.setValue(112)
    panel.form.max_steps.setValue(400)
    panel.form.budget.setValue(30)


def test_images_without_labels_need_the_reconstruction(window, tmp_path, small_folder, corpus):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.form.add_unlabelled(str(tmp_path))
    panel.form.add_unlabelled(str(tmp_path))  # once only
    assert panel.form.unlabelled_folders() == [str(tmp_path)]
    panel.form.mim_weight.setValue(0)
    panel.start(extra=SMALL)
    assert panel.process is None and "Reconstruction above 0" in window.last_error
    panel.form.mim_weight.setValue(0.5)
    args = panel.form.pretrain_args(str(tmp_path / "run"))
    assert args[args.index("--mim-weight") + 1] == "0.5" and args[args.index("--unlabelled") + 1] == str(tmp_path)


def test_pre_training_takes_a_label_csv_and_says_what_a_flat_folder_is_for(window, tmp_path, small_folder, corpus,
                                                                           shared_data):
    """A GUI walk: "Tune the tower from these labels…" filled Images with labels.csv, Job switched to pre-train,
    Start, and the trainer failed after starting ("…/labels.csv does not exist or is not a folder"); a flat folder
    of films had to be sorted into class sub-folders by hand. A label CSV now pre-trains (its paths from Image
    root); a flat folder is refused before anything starts, with what it can be used as."""
    panel = window.training
    form = panel.form
    labels = tmp_path / "labels.csv"
    labels.write_text("Image Index,Finding Labels,Patient ID\n")
    form.fill_finetune(str(labels), str(small_folder))
    setup_panel(panel, small_folder, corpus)
    form.images.setText(str(labels))
    form.job.setCurrentIndex(form.job.findData("pretrain"))
    assert form.csv_button.isVisibleTo(form) and form.image_root.isVisibleTo(form)
    args = form.pretrain_args(str(tmp_path / "run"))
    assert args[args.index("--images") + 1] == str(labels)
    assert args[args.index("--image-root") + 1] == str(small_folder)
    # a GUI walk: every run from the app started from a random tower; it now continues the chosen model
    assert form.start_from.isVisibleTo(form) and form.start_from.currentData() == form.base.currentData()
    assert Path(args[args.index("--init-from") + 1]).is_dir() and float(args[args.index("--lr") + 1]) == 1.5e-4
    # it follows the model picker (a review: it kept the first default), until the user picks in it
    other = str(tmp_path / "other-model")
    form.set_base_models(form.installed_models(), other)
    assert form.start_from.currentData() == other == form.base.currentData()
    scratch = form.start_from.findText("random weights (from scratch)")
    form.start_from.setCurrentIndex(scratch)
    form.start_from.activated.emit(scratch)  # what a user's pick sends
    assert "--init-from" not in form.pretrain_args(str(tmp_path / "run"))
    form.set_base_models(form.installed_models(), "")  # another model in the picker: the user's pick stays
    assert form.start_from.currentText() == "random weights (from scratch)"
    flat = tmp_path / "study"
    flat.mkdir()
    for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:3]:
        (flat / f.name).symlink_to(f)
    form.images.setText(str(flat))
    panel.start(extra=SMALL)
    assert panel.process is None and "holds its films directly" in window.last_error
    assert "give it as Images without labels" in window.last_error and "--unlabelled" not in window.last_error
    # the banner's headline is the whole first sentence (a walk saw it cut at the "." of "e.g.")
    assert window.messages.text() == ("The folder study holds its films directly, not in one sub-folder per class "
                                      "(such as NORMAL and PNEUMONIA).")
    form.images.setText(str(next(flat.iterdir())))  # a picture, not a CSV
    panel.start(extra=SMALL)
    assert panel.process is None and "not IM-" in window.last_error


def test_run_events_reach_the_plots_and_cancel_keeps_a_checkpoint(window, qtbot, tmp_path, small_folder, corpus,
                                                                   shared_data):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    unlabelled = tmp_path / "tb"  # a folder nobody labelled: it feeds the reconstruction only
    unlabelled.mkdir()
    for src in sorted((shared_data / "cxr-tb-tbx11k" / "images").glob("*.jpg"))[:6]:
        (unlabelled / src.name).symlink_to(src)
    panel.form.add_unlabelled(str(unlabelled))
    assert panel.form.mim_weight.value() > 0  # masked image modelling is on for a new run
    panel.form.mask_strategy.setCurrentText("integrity")  # the strategy picker reaches the trainer
    assert not panel.form.decoding.isHidden()
    panel.form.decoding.setCurrentIndex(2)  # worker processes: cancelling must end them with the trainer
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: len(panel.plots.series["loss"][0]) >= 2, timeout=180000)
    start = next(e for e in panel.events if isinstance(e, StartEvent))
    assert start.config["mask_strategy"] == "integrity"
    assert start.config["decode_in"] == "processes" and start.config["num_workers"] >= 1
    panel.plots.flush()  # the curves are redrawn at a bounded rate; the series are current
    xs, ys = panel.plots.curves["loss"].getData()
    assert len(xs) >= 2 and all(y > 0 for y in ys)
    assert len(panel.plots.series["sigma1_pos"][0]) >= 1
    assert start.config["unlabelled"] == [str(unlabelled)] and start.config["mim_weight"] > 0
    assert len(panel.plots.series["mim"][0]) >= 2  # the reconstruction loss is plotted beside the others
    assert "samples/s" in panel.status.stats.text()
    panel.cancel()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    done = panel.events[-1]
    assert isinstance(done, DoneEvent) and done.status == "cancelled"
    assert "cancelled" in panel.status.stats.text()
    assert panel.status.resume_button.isEnabled()


def test_a_crashed_trainer_leaves_the_gui_working_with_the_error_shown(window, qtbot, small_folder, corpus):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: len(panel.plots.series["loss"][0]) >= 1, timeout=180000)
    panel.process.kill()  # what an out-of-memory kill or a segfault looks like from the GUI
    qtbot.waitUntil(lambda: panel.process is None, timeout=60000)
    assert "failed" in panel.status.stats.text().lower()
    assert "Training failed" in window.last_error
    assert panel.status.start_button.isEnabled()


def test_bad_folder_is_reported_from_the_trainer(window, qtbot, tmp_path, corpus):
    panel = window.training
    panel.form.images.setText(str(tmp_path / "does-not-exist"))
    panel.form.corpus.setText(str(corpus))
    panel.form.max_steps.setValue(1)
    panel.start()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    assert "does not exist" in panel.last_error and "does not exist" in window.last_error


def test_a_finished_pretraining_run_becomes_a_model_in_the_picker(window, qtbot, small_folder, corpus, shared_data):
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.form.max_steps.setValue(3)
    panel.start(extra=SMALL)
    qtbot.waitUntil(lambda: panel._done_event() is not None or panel.process is None, timeout=240000)
    panel.cancel()  # clicked just after the run ended (issue 23 item 3): nothing to cancel, the run is complete
    qtbot.waitUntil(lambda: panel.process is None, timeout=240000)
    assert isinstance(panel.events[-1], DoneEvent) and panel.events[-1].status == "completed", panel.last_error
    assert "failed" not in panel.status.stats.text().lower() and not window.last_error
    # the export runs in its own process; the new bundle is listed, not selected (issue 15 item 3)
    name = Path(panel.run_dir).name
    picker = window.model_picker

    def listed() -> str:
        return next((picker.itemData(i) for i in range(picker.count()) if picker.itemData(i).endswith(name)), "")

    qtbot.waitUntil(lambda: bool(listed()), timeout=300000)
    exported = Path(listed())
    assert picker.currentData() != str(exported)
    assert exported.parent == Path(os.environ["MEDFLIP_DATA_DIR"]) / "models"
    assert (exported / "manifest.json").is_file() and (exported / "image_encoder.onnx").is_file()
    picker.setCurrentIndex(picker.findData(str(exported)))
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.path == exported, timeout=60000)
    emb = window.engine.embed_images([load_image(shared_data / "dicom" / "RG1_J2KR.dcm")]).embedding
    scores = window.engine.classify(emb, ["No Finding", "Pneumonia"])
    assert set(scores) == {"No Finding", "Pneumonia"} and abs(sum(scores.values()) - 1.0) < 1e-4
    # its model card is generated from the manifest: what it is, its data, that it is not evaluated yet
    card = window.engine.bundle.model_card()
    assert card.startswith(f"# {exported.name}: MedFLIP image-text model") and "Research use only" in card
    assert str(small_folder) in card and "3 steps of batch" in card and "Not evaluated on held-out patients" in card


# --- issue 15 item 4 -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(small_folder, corpus, tmp_path_factory, tt) -> tuple[Path, str]:
    """A real 2-step run whose events the trainer wrote into the run folder; (folder, trainer stderr)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    run.mkdir()
    code, _, stderr = tt.run("pretrain", tt.args(small_folder, corpus, run, "--max-steps", "2",
                                                               "--events", str(run / "events.jsonl")))
    assert code == 0, stderr[-2000:]
    return run, stderr


def test_resume_rebuilds_the_plots_from_the_run_events(window, qtbot, finished_run):
    run, _ = finished_run
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    panel.run_dir = str(run)
    panel.start(resume=True, extra=["--max-steps", "5"])
    assert panel.plots.series["loss"][0] == [1, 2]  # the history is on screen before the trainer says anything
    qtbot.waitUntil(lambda: panel.plots.series["loss"][0][-1:] >= [3], timeout=240000)
    panel.cancel()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    xs = panel.plots.series["loss"][0]
    assert xs[:3] == [1, 2, 3] and xs == sorted(set(xs))  # continued, not restarted at the resumed step
    assert list(panel.plots.curves["loss"].getData()[0][:2]) == [1, 2]
    shots = Path(os.environ.get("MEDFLIP_SCREENSHOTS", "/tmp/medflip-screenshots"))
    shot = shots / "training-after-resume-1280x800.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(shot))
    # the new steps were added to the run's events: a second resume sees them too
    from app.training.run_folders import read_run_events

    assert max(e.step for e in read_run_events(run) if isinstance(e, StepEvent)) >= 3


def test_plot_keys_never_cover_the_curves_and_are_not_cut_at_1280x800(window, qtbot):
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    qtbot.wait(200)
    for plot in (panel.plots.loss_plot, panel.plots.sigma_plot):
        assert plot.plotItem.legend is None  # no legend box drawn over the curves
        title = plot.plotItem.titleLabel
        assert title.item.boundingRect().width() <= plot.width()
    text = panel.plots.loss_plot.plotItem.titleLabel.text
    assert "svd" in text and "contrastive" in text and "total" in text
    for job in ("pretrain", "finetune"):  # neither job's form nor the results view grows the window
        panel.form.job.setCurrentIndex(panel.form.job.findData(job))
        for view in (panel.results, panel.views.widget(0)):
            panel.views.setCurrentWidget(view)
            qtbot.wait(50)
            assert (window.width(), window.height()) == (1280, 800), (job, window.size())


def test_no_torch_user_warning_in_the_trainer_log(finished_run):
    _, stderr = finished_run
    assert "UserWarning" not in stderr and "Warning:" not in stderr


def test_resume_stays_disabled_after_a_run_that_failed_on_its_config(window, qtbot, tmp_path, corpus):
    panel = window.training
    panel.form.images.setText(str(tmp_path / "does-not-exist"))
    panel.form.corpus.setText(str(corpus))
    panel.start()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)
    assert panel.last_error
    assert not panel.status.resume_button.isEnabled()
    assert panel.status.start_button.isEnabled() and panel.status.resume_folder_button.isEnabled()


def test_any_run_folder_can_be_resumed_from_the_gui(window, qtbot, finished_run, tmp_path):
    panel = window.training
    assert not panel.resume_folder(str(tmp_path))  # not a run: said so, nothing started
    assert panel.process is None and "not a training run folder" in window.last_error
    run, _ = finished_run
    assert panel.resume_folder(str(run))
    assert panel.process is not None and panel.run_dir == str(run)
    assert "--resume" in panel.log.toPlainText()
    panel.cancel()
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)


def test_a_trainer_killed_while_exiting_after_done_is_complete_and_exported(window, qtbot, finished_run):
    """Issue 23 item 3: a run that said `done: completed` and then died in its exit (a late Cancel's SIGTERM during
    interpreter shutdown, exit code 15) was reported as "Training failed" and never exported."""
    from PySide6 import QtCore

    from app.training.run_folders import PRETRAIN, read_run_events

    run, _ = finished_run
    panel = window.training
    panel.run_dir, panel.running_job = str(run), PRETRAIN
    events = read_run_events(run)  # the module's other tests resume this run: its first `done` is the completed one
    first_done = next(i for i, e in enumerate(events) if isinstance(e, DoneEvent))
    panel.events = events[:first_done + 1]
    assert panel.events[-1].status == "completed"
    panel.process = QtCore.QProcess(panel)  # the exited trainer's process object, as QProcess.finished finds it
    panel._finished(15, QtCore.QProcess.ExitStatus.CrashExit)
    assert "failed" not in panel.status.stats.text().lower() and not panel.last_error and not window.last_error
    assert "nothing is lost" in panel.log.toPlainText()
    assert panel.export_process is not None  # the model is exported as after any completed run
    panel.export_process.waitForFinished(300000)


def test_a_typed_name_names_the_run_and_the_classifier(window, tmp_path, small_folder, corpus):
    """A GUI walk found models told apart only by their date and time."""
    panel = window.training
    setup_panel(panel, small_folder, corpus)
    panel.form.name.setText("  effusion probe / v2 ")
    args = panel.build_args(resume=False)
    run = Path(args[args.index("--out-dir") + 1])
    assert run.name.startswith("effusion-probe-v2-") and run == Path(panel.run_dir)
    panel.form.job.setCurrentIndex(panel.form.job.findData("finetune"))
    panel.finetune_args()
    assert Path(panel.classifier_out).name.startswith("effusion-probe-v2-")
    panel.form.name.setText("")
    panel.finetune_args()
    assert Path(panel.classifier_out).name.startswith(f"classifier-{small_folder.name}-")
