"""Training from the GUI: the trainer runs as a separate process (QProcess); its JSON-lines events drive
live plots of the loss, its parts and sigma_1. Cancel keeps a checkpoint; Resume continues it."""

from __future__ import annotations

import time
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from medflip_core.checkpoint_layout import RUN_CONFIG
from medflip_core.events import (
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    SkippedStepEvent,
    StartEvent,
    StepEvent,
    event_from_record,
    parse_event_line,
)
from medflip_core.model_store import user_data_dir
from medflip_core.processes import medflip_command, trainer_command


class TrainingPanel(QtWidgets.QWidget):
    model_exported = QtCore.Signal(str)
    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.process: QtCore.QProcess | None = None
        self.export_process: QtCore.QProcess | None = None
        self.run_dir = ""
        self.base_model: Path | None = None  # the bundle fine-tuning starts from (the one in the picker)
        self._buffer = b""
        self.events: list[Event] = []
        self.last_error = ""

        self.job = QtWidgets.QComboBox()
        self.job.addItems(["pretrain", "finetune"])
        self.images = QtWidgets.QLineEdit()
        self.images.setPlaceholderText("ImageFolder: one sub-folder per class (NORMAL, PNEUMONIA, …)")
        self.corpus = QtWidgets.QLineEdit()
        self.corpus.setPlaceholderText("Reports: Open-i XML folder or .tgz, CSV, TXT (pre-training)")
        self.mask = QtWidgets.QDoubleSpinBox()
        self.mask.setRange(0.0, 0.9)
        self.mask.setSingleStep(0.05)
        self.mask.setValue(0.75)
        self.budget = QtWidgets.QDoubleSpinBox()
        self.budget.setRange(0.1, 10000)
        self.budget.setValue(30)
        self.budget.setSuffix(" min")
        self.max_steps = QtWidgets.QSpinBox()
        self.max_steps.setRange(0, 10_000_000)
        self.max_steps.setSpecialValueText("no limit")
        self.batch = QtWidgets.QSpinBox()
        self.batch.setRange(2, 1024)
        self.batch.setValue(32)
        self.device = QtWidgets.QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.image_size = QtWidgets.QSpinBox()
        self.image_size.setRange(32, 1024)
        self.image_size.setSingleStep(16)
        self.image_size.setValue(224)
        form = QtWidgets.QFormLayout()
        form.addRow("Job", self.job)
        form.addRow("Images", self._with_browse(self.images, folder=True))
        form.addRow("Reports", self._with_browse(self.corpus, folder=False))
        form.addRow("Mask ratio", self.mask)
        form.addRow("Time budget", self.budget)
        form.addRow("Max steps", self.max_steps)
        form.addRow("Batch size", self.batch)
        form.addRow("Image size", self.image_size)
        form.addRow("Device", self.device)

        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stops after the current step and keeps a checkpoint")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its latest checkpoint")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.resume_button.setEnabled(False)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(b)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%p %")
        self.stats = QtWidgets.QLabel("Idle")
        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget(title="loss")
        self.loss_plot.addLegend(offset=(-5, 5))
        self.loss_plot.setLabel("bottom", "step")
        self.curves = {
            "loss": self.loss_plot.plot(pen=pg.mkPen("#e6e6e6", width=2), name="total"),
            "contrastive": self.loss_plot.plot(pen=pg.mkPen("#4fa3ff"), name="contrastive"),
            "svd": self.loss_plot.plot(pen=pg.mkPen("#ffb347"), name="svd"),
        }
        self.sigma_plot = pg.PlotWidget(title="σ₁ (token-level, normalised)")
        self.sigma_plot.addLegend(offset=(-5, 5))
        self.sigma_plot.setLabel("bottom", "step")
        self.curves["sigma1_pos"] = self.sigma_plot.plot(pen=pg.mkPen("#5fd38d", width=2), name="positive pairs")
        self.curves["sigma1_neg"] = self.sigma_plot.plot(pen=pg.mkPen("#ff6b6b", width=2), name="negative pairs")
        self.series: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self.curves}
        self.log = QtWidgets.QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("Trainer log")

        plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.sigma_plot)
        plots.addWidget(self.log)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.stats)
        layout.addWidget(plots, 1)

    def _with_browse(self, edit: QtWidgets.QLineEdit, folder: bool) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QtWidgets.QPushButton("…")
        button.setFixedWidth(32)

        def browse() -> None:
            if folder:
                path = QtWidgets.QFileDialog.getExistingDirectory(self, "Image folder")
            else:
                path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Reports")
            if path:
                edit.setText(path)

        button.clicked.connect(browse)
        row.addWidget(button)
        return box

    # --- process control ------------------------------------------------------------------------------
    def build_args(self, resume: bool) -> list[str]:
        if resume and self.run_dir:
            return ["--config", str(Path(self.run_dir) / RUN_CONFIG), "--resume"]
        self.run_dir = str(user_data_dir() / "runs" / time.strftime("%Y%m%d-%H%M%S"))
        args = ["--images", self.images.text().strip(), "--mask-ratio", f"{self.mask.value():.2f}",
                "--budget-minutes", f"{self.budget.value():g}", "--batch-size", str(self.batch.value()),
                "--image-size", str(self.image_size.value()), "--device", self.device.currentText(),
                "--out-dir", self.run_dir]
        if self.max_steps.value() > 0:
            args += ["--max-steps", str(self.max_steps.value())]
        if self.job.currentText() == "pretrain" and self.corpus.text().strip():
            args += ["--corpus", self.corpus.text().strip()]
        if self.job.currentText() == "finetune" and self.base_model is not None:
            # the trainer reads the model's shape (and its input size) from the bundle's manifest
            args += ["--init-from", str(self.base_model)]
        return args

    def start(self, resume: bool = False, extra: list[str] | None = None) -> None:
        if self.process is not None:
            return
        if not resume and not self.images.text().strip():
            self.message.emit("Choose an image folder to train on.")
            return
        args = self.build_args(resume) + (extra or [])
        program, full = trainer_command([self.job.currentText(), *args])
        for series in self.series.values():
            series[0].clear()
            series[1].clear()
        self.events.clear()
        self.last_error = ""
        self.process = QtCore.QProcess(self)
        self.process.setProcessChannelMode(QtCore.QProcess.ProcessChannelMode.SeparateChannels)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._process_error)
        self.log.appendPlainText("$ " + " ".join([program, *full]))
        self.process.start(program, full)
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.stats.setText("Starting the trainer…")

    def cancel(self) -> None:
        if self.process is not None:
            self.stats.setText("Cancelling after the current step…")
            self.process.terminate()  # SIGTERM: the trainer checkpoints and exits cleanly

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            record = parse_event_line(raw.decode("utf-8", "replace"))
            event = event_from_record(record) if record is not None else None
            if event is not None:
                self.handle_event(event)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace").rstrip()
        if text:
            self.log.appendPlainText(text)

    def handle_event(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, StartEvent):
            precision = f", {event.amp}" if event.amp != "off" else ""
            self.log.appendPlainText(f"started on {event.device}{precision}: {event.n_train} training images, "
                                     f"{event.n_val} validation, {event.n_sentences or 0} sentences")
        elif isinstance(event, StepEvent):
            self._plot_step(event)
        elif isinstance(event, EvalEvent):
            metrics = {k: v for k, v in event.metrics.items() if k.startswith("val_")}
            self.log.appendPlainText(f"eval at step {event.step}: {metrics} ({event.metrics.get('data_set', '')})")
        elif isinstance(event, CheckpointEvent):
            self.log.appendPlainText(f"checkpoint: {event.path}")
        elif isinstance(event, SkippedStepEvent):
            self.log.appendPlainText(f"step {event.step} skipped: {event.reason}")
        elif isinstance(event, DoneEvent):
            status = "cancelled — checkpoint kept, Resume continues it" if event.cancelled else "completed"
            self.stats.setText(f"Training {status} at step {event.step}.")
            self.log.appendPlainText(f"done: {status}")
        elif isinstance(event, ErrorEvent):
            self.last_error = event.message or "unknown error"
            self.stats.setText(f"Training failed: {self.last_error}")
            self.message.emit(f"Training failed: {self.last_error}")

    def _plot_step(self, event: StepEvent) -> None:
        for key in self.series:
            value = getattr(event, key, None)
            if isinstance(value, int | float):
                xs, ys = self.series[key]
                xs.append(event.step)
                ys.append(float(value))
                self.curves[key].setData(xs, ys)
        if event.total_steps:
            self.progress.setValue(int(100 * event.step / event.total_steps))
        elif event.elapsed_s and event.eta_s is not None:
            self.progress.setValue(int(100 * event.elapsed_s / max(event.elapsed_s + event.eta_s, 1e-6)))
        eta = event.eta_s
        self.stats.setText(f"step {event.step}  loss {event.loss:.3f}  {event.samples_per_s:.1f} samples/s  "
                           f"ETA {eta / 60:.1f} min" if eta is not None else f"step {event.step}")

    def _process_error(self, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.last_error = "the trainer could not be started"
            self.message.emit("Training failed: the trainer process could not be started.")

    def _finished(self, code: int, status: QtCore.QProcess.ExitStatus) -> None:
        self._read_stdout()
        crashed = status == QtCore.QProcess.ExitStatus.CrashExit or (code != 0 and not self.last_error)
        if crashed:
            self.last_error = f"the trainer stopped unexpectedly (exit code {code})"
            self.stats.setText(f"Training failed: {self.last_error}. The last checkpoint is kept.")
            self.message.emit(f"Training failed: {self.last_error}")
        self.process = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.resume_button.setEnabled(bool(self.run_dir))
        done = next((e for e in reversed(self.events) if isinstance(e, DoneEvent)), None)
        if done and not done.cancelled and code == 0 and self.job.currentText() == "pretrain":
            self.export_model()

    def export_model(self) -> None:
        """Turn the finished run into a bundle under the user's models folder (in a subprocess: torch)."""
        out = str(user_data_dir() / "models" / f"medflip-{Path(self.run_dir).name}")
        program, args = medflip_command(["export", self.run_dir, out, "--half-weights"])
        self.export_process = QtCore.QProcess(self)
        self.export_process.finished.connect(lambda code, _s: self._exported(code, out))
        self.log.appendPlainText(f"exporting the model to {out} …")
        self.export_process.start(program, args)

    def _exported(self, code: int, out: str) -> None:
        err = bytes(self.export_process.readAllStandardError()).decode("utf-8", "replace").strip()
        if code == 0:
            self.log.appendPlainText(f"model ready: {out}")
            self.model_exported.emit(out)
        else:
            self.log.appendPlainText(err[-2000:])
            self.message.emit(f"Exporting the trained model failed: {err.splitlines()[-1] if err else code}")
