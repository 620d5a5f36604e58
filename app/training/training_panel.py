"""The Training tab: a job's form (form.py), its child process and event stream (job.py) and its live plots
(plots.py) put together, and what happens when a job starts, reports, ends or is cancelled.

Two jobs: pre-training (the trainer; live plots of the loss, its parts and sigma_1; the events are kept in the
run folder, so a resumed run's plots continue its history) and fine-tuning a classifier (`medflip finetune
--mode probe`; live validation AUC per class; the bundle lands in the user's models folder, is selected, and
its validation ROC curves and confusion matrix are shown). Cancel keeps what was done; Resume continues it.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.panels.classifier_results import ClassifierResults
from app.scroll_page import scroll_page
from app.training import export_handover
from app.training.form import TrainingForm
from app.training.job import EventStream, Progress, format_eta, log_line, start_process
from app.training.job_status import JobStatus, auc_summary
from app.training.plots import TrainingPlots
from app.training.run_folders import (
    FINETUNE,
    PRETRAIN,
    keep_events,
    read_run_events,
    resume_offer,
    run_config,
    run_job,
    run_problem,
)
from app.wide_tab import WideWhileShown
from medflip_core.bundles.checkpoint_layout import RUN_CONFIG
from medflip_core.bundles.model_store import clip_base_of, is_classifier, user_models_dir
from medflip_core.events import (
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    StartEvent,
    StepEvent,
)
from medflip_core.processes import medflip_command, trainer_command, trainer_missing
from medflip_core.resources import user_data_dir


class TrainingPanel(WideWhileShown, QtWidgets.QWidget):
    model_exported = QtCore.Signal(str)  # a pre-training run's export: listed, not selected
    classifier_ready = QtCore.Signal(str)  # the user's own fine-tuning job: listed and selected
    message = QtCore.Signal(str)
    resolved = QtCore.Signal()  # a run started: an earlier start's error in the window's message bar is obsolete

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.process: QtCore.QProcess | None = None
        self.export_process: QtCore.QProcess | None = None
        self.run_dir = ""
        self.base_model: Path | None = None  # the bundle fine-tuning starts from (the one in the picker)
        self.stream = EventStream()
        self.events: list[Event] = []
        self.progress = Progress()  # the progress bar value of the job running or last run
        self.last_error = ""
        self.running_job = ""
        self.classifier_out = ""  # where the running fine-tuning job writes its bundle
        self._finetune_args: list[str] = []  # a cancelled probe is resumed by running it again (cached)
        self.val_auc: dict[str, float] = {}
        self.stop_reason = "stopped"  # how the last run ended, for the next start: "cancelled", "closed", "stopped"

        self.form = TrainingForm()
        self.form.job_changed.connect(self._job_changed)

        self.status = JobStatus()  # buttons, progress and status: always in sight, with the plots
        self.status.start_button.clicked.connect(lambda: self.start(resume=False))
        self.status.cancel_button.clicked.connect(self.cancel)
        self.status.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.status.resume_folder_button.clicked.connect(self._choose_run_folder)
        self.plots = TrainingPlots()
        self.log = QtWidgets.QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("Trainer log")

        self.results = ClassifierResults()
        self.views = QtWidgets.QTabWidget()
        self.views.addTab(self.plots, "Training curves")
        self.views.addTab(self.results, "Classifier results")
        self.views.tabBar().setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)  # a clicked label: Ctrl+Tab is theirs
        plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        plots.addWidget(self.views)
        plots.addWidget(self.log)
        plots.setStretchFactor(0, 4)
        plots.setStretchFactor(1, 1)
        plots.setSizes([480, 90])
        self.log.setMinimumHeight(40)
        plots.setCollapsible(0, False)
        # While in front the tab has the window's width (WideWhileShown, as Labelling): the form and the job's
        # buttons on the left, plots and log on the right (a GUI walk saw ~190 px of form height at 1280x800).
        self.controls = QtWidgets.QScrollArea()
        self.controls.setWidget(self.form)
        self.controls.setWidgetResizable(True)
        self.controls.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.controls.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls.setMinimumHeight(90)
        self.controls.setMinimumWidth(self.form.minimumSizeHint().width()
                                      + self.controls.verticalScrollBar().sizeHint().width())
        left = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.controls, 1)
        column.addWidget(self.status)  # Start/Cancel/Resume never scroll out of sight
        self.split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.split.addWidget(left)
        self.split.addWidget(plots)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(0, 0)
        self.split.setStretchFactor(1, 1)
        self._sized = False
        # The tab's content scrolls as a whole when the window is lower than it needs; it never raises the window's
        # minimum height (1280x720 fits).
        self.page = scroll_page(self, self.split, 200)
        self._job_changed()

    def showEvent(self, event) -> None:
        """First shown with a width: the form as wide as it asks (within half the tab), the plots the rest."""
        super().showEvent(event)
        if not self._sized and self.split.width() > 0:
            self._sized = True
            total = sum(self.split.sizes())
            form = min(max(self.controls.sizeHint().width(), self.controls.minimumWidth()) + 8, total // 2)
            self.split.setSizes([form, total - form])

    def keep_split_sizes(self) -> None:
        """The form/plots divider was restored from the settings: the first show keeps it."""
        self._sized = True

    def job_name(self) -> str:
        return self.form.job_name()

    def _job_changed(self) -> None:
        self.status.resume_button.setEnabled(self._can_resume())
        if self.process is None:  # a running job keeps its own plots whatever the form shows next
            self.plots.show_job(self.job_name() == PRETRAIN)

    # --- process control ------------------------------------------------------------------------------
    def build_args(self, resume: bool) -> list[str]:
        """The trainer's arguments of a pre-training run (a new run folder unless resuming)."""
        if resume and self.run_dir:  # events to stdout, whatever the run's config says: the GUI reads them
            return ["--config", str(Path(self.run_dir) / RUN_CONFIG), "--resume", "--events", "-"]
        stamp, name = time.strftime("%Y%m%d-%H%M%S"), self.form.name_slug()
        self.run_dir = str(user_data_dir() / "runs" / (f"{name}-{stamp}" if name else stamp))
        return self.form.pretrain_args(self.run_dir)

    def finetune_args(self) -> list[str]:
        """`medflip finetune` arguments: the images, the base model in the picker, a new bundle folder under the
        user's models (written there only when complete)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        images = self.form.images.text().strip()
        name = self.form.name_slug() or f"classifier-{Path(images).stem}"
        self.classifier_out = str(user_models_dir() / f"{name}-{stamp}")
        return self.form.finetune_args(self.classifier_out, self.form.base_model())

    def start(self, resume: bool = False, extra: list[str] | None = None) -> None:
        if self.process is not None:
            return
        if not resume and not self.form.images.text().strip():
            self.message.emit("Choose an image folder (one sub-folder per class) or a label CSV to train on.")
            return
        job = self.job_name()
        missing = trainer_missing() if job == PRETRAIN or self.form.mode.currentText() != "probe" else None
        if missing:  # the light app without the trainer add-on: say what to install; the probe still runs
            self._log(missing)
            self.status.stats.setText("Needs the trainer add-on, which is not installed (the probe works without it).")
            self.message.emit(missing)
            return
        if job == FINETUNE and not (resume and self._finetune_args):
            base = self.form.base_model()  # None: no model chosen yet, `medflip finetune` takes the default one
            if base is not None and is_classifier(base):  # the command refuses it too; said here before any work
                self.message.emit(f"{base.name} cannot be the base of a fine-tuning: choose a CLIP model (not a "
                                  "classifier) as the Base model in the Training form.")
                return
        if job == FINETUNE:
            if not (resume and self._finetune_args):
                self._finetune_args = self.finetune_args() + (extra or [])
            program, full = medflip_command(self._finetune_args)
            self.val_auc = {}
            self.status.auc_label.setText("")
            self.status.auc_label.setVisible(True)
        else:
            try:
                args = self.build_args(resume) + (extra or [])
            except ValueError as exc:  # the form's own check: a sentence, nothing started
                self.message.emit(str(exc))
                return
            program, full = trainer_command([run_job(self.run_dir) if resume else PRETRAIN, *args])
        self.plots.clear()
        self.events.clear()
        self.last_error = ""
        self.status.progress.setValue(self.progress.reset())  # never the last run's 100 % beside "Starting…"
        if job == PRETRAIN and resume:
            self.replay(read_run_events(self.run_dir))  # the plots continue the run's history
        self.running_job = job
        self.stop_reason = "stopped"
        self.plots.show_job(job == PRETRAIN)
        if job == PRETRAIN:  # the live curves, not an earlier fine-tuning's results, are what this run shows
            self.views.setCurrentIndex(0)
        self.stream = EventStream()
        self._log("$ " + " ".join([program, *full]), to_end=True)  # a new job: its lines in sight
        self.process = start_process(self, program, full, stdout=self._read_stdout, stderr=self._read_stderr,
                                     finished=self._finished, error=self._process_error)
        self.status.running(True)
        # torch's import and the first read of the images take 10-60 s before the trainer's first event
        self.status.stats.setText("Starting the trainer (loading torch, reading the images: up to a minute)…"
                                  if job == PRETRAIN else "Starting the fine-tuning job…")

    def _log(self, text: str, to_end: bool = False) -> None:
        """A line in the trainer log, which follows the newest line unless the user scrolled up to read (a GUI
        walk saw the previous job's last line at the top of a four-line log while a new run was going)."""
        bar = self.log.verticalScrollBar()
        following = to_end or bar.value() >= bar.maximum() - 2
        self.log.appendPlainText(text)
        if following:
            bar.setValue(bar.maximum())

    def replay(self, events: list[Event]) -> None:
        """Rebuild the plots from a run's earlier events (its step events; nothing is logged again)."""
        for event in events:
            if isinstance(event, StepEvent):
                self.plots.add_step(event)
        self.plots.flush()
        if events:
            self._log(f"plots rebuilt from {len(events)} earlier events of this run")

    def _choose_run_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Training run folder to resume",
                                                            str(user_data_dir() / "runs"))
        if folder:
            self.resume_folder(folder)

    def resume_folder(self, folder: str) -> bool:
        """Continue a pre-training run folder (this session's or any other) from its latest checkpoint."""
        problem = run_problem(folder)
        if problem:
            self.message.emit(problem)
            return False
        self.form.job.setCurrentIndex(self.form.job.findData(PRETRAIN))
        self.form.show_run_config(run_config(folder))  # the form shows the run's settings, not the defaults
        self.run_dir = str(Path(folder))
        self.start(resume=True)
        return True

    def offer_resume(self, folder: str, why: str = "stopped") -> bool:
        """At start-up: a pre-training run the last session left unfinished is offered (form filled, Resume
        enabled, a sentence saying so: stopped when the app closed, or cancelled by the user); nothing starts by
        itself."""
        if not folder or run_problem(folder):
            return False
        self.form.job.setCurrentIndex(self.form.job.findData(PRETRAIN))
        self.form.show_run_config(run_config(folder))
        self.run_dir = str(Path(folder))
        self.running_job = PRETRAIN
        self.stop_reason = why  # offered and not resumed: the same words at the start after
        self.status.stats.setText(resume_offer(folder, why))
        self.status.resume_button.setEnabled(True)
        return True

    def _can_resume(self) -> bool:
        if self.job_name() == FINETUNE:
            # a cancelled probe continues from its embedding cache; one that failed (bad input) starts afresh
            return (bool(self._finetune_args) and self.running_job == FINETUNE and not self.last_error
                    and not self._finished_ok())
        if self.running_job == PRETRAIN and self._finished_ok():  # completed: nothing to continue
            return False
        return bool(self.run_dir) and not run_problem(self.run_dir)

    def _finished_ok(self) -> bool:
        done = self._done_event()
        return done is not None and done.status == "completed"

    def set_base_model(self, bundle: str | Path) -> None:
        """The model in the picker: fine-tuning's base defaults to it, or, for a classifier, to the CLIP model it
        came from (a classifier is never a base); the form's Base model choice can name another."""
        self.base_model = clip_base_of(bundle) or Path(bundle)
        default = "" if is_classifier(self.base_model) else str(self.base_model)
        self.form.set_base_models(self.form.installed_models(), default)

    def shut_down(self, settings) -> None:
        """The window closes: a running job checkpoints and stops (a pre-training run is remembered, so the next
        start offers to resume it); a running export is handed over to finish on its own and be picked up at the
        next start (app/training/export_handover.py)."""
        if self.process is not None:
            if self.running_job == PRETRAIN and self.run_dir:
                settings.set("unfinished_run", self.run_dir)
                settings.set("unfinished_run_why", "closed")
            self.cancel()
            self.process.waitForFinished(30000)
        elif self.running_job == PRETRAIN and self._can_resume():  # ended earlier (or offered), never resumed
            settings.set("unfinished_run", self.run_dir)
            settings.set("unfinished_run_why", self.stop_reason)
        else:
            settings.set("unfinished_run", "")
        settings.set("training_form", self.form.state())
        export_handover.hand_over(self.export_process, settings)

    def job_running(self) -> str:
        """'' when no job runs, else what it is, for the question asked before the window closes."""
        if self.process is None:
            return ""
        return "pre-training run" if self.running_job == PRETRAIN else "fine-tuning job"

    def _done_event(self) -> DoneEvent | None:
        return next((e for e in reversed(self.events) if isinstance(e, DoneEvent)), None)

    def cancel(self) -> None:
        if self.process is None:
            return
        if self._done_event() is not None:  # the run has ended and the trainer is exiting: nothing to cancel
            self.status.stats.setText("The run has already ended; waiting for the trainer to exit…")
            return
        self.status.stats.setText("Cancelling after the current step…")
        self.stop_reason = "cancelled"
        self.process.terminate()  # SIGTERM: the trainer checkpoints and exits cleanly

    def _read_stdout(self) -> None:
        kept = []
        for line, event in self.stream.feed(bytes(self.process.readAllStandardOutput())):
            kept.append(line)
            self.handle_event(event)
        self._keep_events(kept)

    def _keep_events(self, lines: list[str]) -> None:
        """Append a pre-training run's events to RUN/events.jsonl, so a resume can rebuild its plots."""
        if not lines or self.running_job != PRETRAIN or not self.run_dir or not Path(self.run_dir).is_dir():
            return
        try:
            keep_events(self.run_dir, lines)
        except OSError as exc:  # the plots still work; only a later resume would miss this history
            self._log(f"could not keep the events in the run folder: {exc}")

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace").rstrip()
        if text:
            self._log(text)

    def handle_event(self, event: Event) -> None:
        self.events.append(event)
        line = log_line(event, self.running_job)
        if line:
            self._log(line)
        if isinstance(event, StartEvent):
            self.progress.started(event)
            resumed = f", resumed at step {event.start_step}" if event.start_step else ""
            self.status.stats.setText(f"Started on {event.device}{resumed}: {event.n_train} training images, "
                                      f"{event.n_val} validation. The first step's figures come when it ends.")
            self.resolved.emit()
        if isinstance(event, StepEvent):
            self._plot_step(event)
        elif isinstance(event, EvalEvent):
            self._show_auc(event)
        elif isinstance(event, DoneEvent):
            status = "cancelled — checkpoint kept, Resume continues it" if event.cancelled else "completed"
            self.status.stats.setText(f"Training {status} at step {event.step}.")
            if not event.cancelled:
                self.status.progress.setValue(self.progress.completed())
            self.status.cancel_button.setEnabled(False)  # the run has ended: a late Cancel has nothing to stop
        elif isinstance(event, ErrorEvent):
            self.last_error = event.message or "unknown error"
            self.status.stats.setText(f"Training failed: {self.last_error}")
            self.message.emit(f"Training failed: {self.last_error}")

    def _show_auc(self, event: EvalEvent) -> None:
        """Validation ROC AUC per class (with its patient-level CI when the job gives one)."""
        summary = auc_summary(event.metrics)
        if summary is not None:
            self.val_auc, text = summary
            self.status.auc_label.setText(text)

    def _plot_step(self, event: StepEvent) -> None:
        self.plots.add_step(event)
        self.status.progress.setValue(self.progress.step(event))
        eta = event.eta_s
        if self.running_job == FINETUNE and self.form.mode.currentText() == "probe":
            self.status.stats.setText(f"embedding images: {event.step} of {event.total_steps or '?'} new "
                               f"({event.samples_per_s:.1f} images/s)")
            return
        self.status.stats.setText(f"step {event.step}  loss {event.loss:.3f}  {event.samples_per_s:.1f} samples/s  "
                           f"{format_eta(eta)}" if eta is not None else f"step {event.step}")

    def _process_error(self, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.last_error = "the trainer could not be started"
            self.message.emit("Training failed: the trainer process could not be started.")

    def _finished(self, code: int, status: QtCore.QProcess.ExitStatus) -> None:
        """The trainer exited. Its `done` event is the run's true state: a process killed while it exits (a late
        Cancel, a logout) after saying done has lost nothing, so it is not reported as a failure."""
        self._read_stdout()
        self.plots.flush()
        done = self._done_event()
        abnormal = status == QtCore.QProcess.ExitStatus.CrashExit or code != 0
        crashed = done is None and (status == QtCore.QProcess.ExitStatus.CrashExit
                                    or (code != 0 and not self.last_error))
        if abnormal and done is not None and not self.last_error:
            self._log(f"the trainer was stopped while exiting (exit code {code}), after the run had "
                                     f"ended ({done.status} at step {done.step}); nothing is lost")
            code = 0
        if crashed:
            self.last_error = f"the trainer stopped unexpectedly (exit code {code})"
            self.status.stats.setText(f"Training failed: {self.last_error}. The last checkpoint is kept.")
            self.message.emit(f"Training failed: {self.last_error}")
        self.process = None
        self.status.running(False)
        self.status.resume_button.setEnabled(self._can_resume())
        if done and not done.cancelled and code == 0 and self.running_job == PRETRAIN:
            self.export_model()
        elif done and not done.cancelled and code == 0 and self.running_job == FINETUNE:
            self._classifier_written()

    def _classifier_written(self) -> None:
        out = self.classifier_out
        if not Path(out).is_dir():
            self.message.emit(f"The fine-tuning job ended but wrote no classifier at {out}.")
            return
        self._finetune_args = []
        self.status.resume_button.setEnabled(False)
        self._log(f"classifier ready: {out}")
        self.status.stats.setText(f"Classifier ready: {Path(out).name} (selected in the Model picker).")
        self.status.auc_label.setVisible(False)  # the results view below has the same figures, with their curves
        self.show_classifier(out)
        self.classifier_ready.emit(out)

    def show_classifier(self, bundle: str) -> None:
        """The results view of a classifier bundle ('' for a model that is none: the view stays as it is)."""
        if bundle and self.results.show_bundle(bundle):
            self.views.setCurrentWidget(self.results)

    def export_model(self) -> None:
        """Turn the finished run into a bundle under the user's models folder (in a subprocess: torch)."""
        out = str(user_data_dir() / "models" / f"medflip-{Path(self.run_dir).name}")
        self._log(f"exporting the model to {out} …")
        self.export_process = export_handover.start_export(self, self.run_dir, out, self._exported)

    def _exported(self, out: str, error: str) -> None:
        if not error:
            self._log(f"model ready: {out}")
            self.model_exported.emit(out)
        else:
            self._log(error[-2000:])
            self.message.emit(f"Exporting the trained model failed: {error.splitlines()[-1]}")
