"""Training from the GUI, in a separate process (QProcess) whose JSON-lines events drive the view.

Two jobs: pre-training (the trainer; live plots of the loss, its parts and sigma_1; the events are kept in the
run folder, so a resumed run's plots continue its history) and fine-tuning a classifier (`medflip finetune
--mode probe`; live validation AUC per class; the bundle lands in the user's models folder, is selected, and
its validation ROC curves and confusion matrix are shown). Cancel keeps what was done; Resume continues it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app import export_handover
from app.classifier_results import ClassifierResults
from medflip_core.checkpoint_layout import RUN_CONFIG, latest_checkpoint
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
from medflip_core.masking import MASK_STRATEGIES
from medflip_core.model_store import user_data_dir, user_models_dir
from medflip_core.processes import medflip_command, trainer_command, trainer_missing

RUN_EVENTS = "events.jsonl"  # RUN/events.jsonl: every event the GUI received from the run, in order
PLOT_REFRESH_MS = 250  # live curves are redrawn at most 4 times a second, however fast the events come
PRETRAIN, FINETUNE = "pretrain", "finetune"
FINETUNE_MODES = ["probe", "partial", "full"]  # probe: frozen tower, no torch; partial/full: the trainer tunes it


def decoding_choice() -> QtWidgets.QComboBox:
    """Where the trainer decodes images: in its loop, in loader threads, or in worker processes (the trainer's
    --num-workers / --decode-in); each item's data is the flags it adds."""
    workers = max(1, min(4, (os.cpu_count() or 2) - 1))
    box = QtWidgets.QComboBox()
    box.addItem("in the training loop", [])
    box.addItem(f"{workers} loader threads", ["--num-workers", str(workers)])
    box.addItem(f"{workers} worker processes (JPEG 2000 DICOMs)",
                ["--num-workers", str(workers), "--decode-in", "processes"])
    box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(14)  # the full text shows when there is room, and in the open list
    box.setToolTip("Decoded images are kept in memory after the first epoch. Threads overlap decoding with the "
                   "step where the decoder allows it (PNG, JPEG, uncompressed DICOM); JPEG 2000's decoder does "
                   "not, so its folders decode faster in worker processes. On a 2-core CPU the loop is as fast.")
    return box


def run_problem(folder: str | Path) -> str:
    """Why a folder cannot be resumed ('' when it can): it needs its config and a complete checkpoint."""
    folder = Path(folder)
    if not (folder / RUN_CONFIG).is_file():
        return f"{folder.name} is not a training run folder (it has no {RUN_CONFIG})."
    if latest_checkpoint(folder) is None:
        return f"The run {folder.name} has no complete checkpoint to resume from; start it again."
    return ""


def run_job(folder: str | Path) -> str:
    """The trainer job a run folder was started with (pretrain, or the trainer's own finetune)."""
    try:
        return json.loads((Path(folder) / RUN_CONFIG).read_text(encoding="utf-8")).get("job") or PRETRAIN
    except (OSError, ValueError):
        return PRETRAIN


def read_run_events(folder: str | Path) -> list[Event]:
    """The events a run folder kept (RUN/events.jsonl; unparseable lines, e.g. a torn last line, skipped)."""
    path = Path(folder) / RUN_EVENTS
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        record = parse_event_line(line)
        event = event_from_record(record) if record is not None else None
        if event is not None:
            events.append(event)
    return events


def progress_percent(event: StepEvent) -> int:
    """How far the run is, by the same measure as its ETA: the trainer stops at whichever of its step limit and
    time budget comes first, and its ETA already says which (a step count alone reads 27 % when the budget ends)."""
    if event.elapsed_s and event.eta_s is not None:
        return int(100 * event.elapsed_s / max(event.elapsed_s + event.eta_s, 1e-6))
    if event.total_steps:
        return int(100 * event.step / event.total_steps)
    return 0


def format_eta(seconds: float) -> str:
    """'ETA 40 s', 'ETA 12 min', 'ETA 1 h 05 min' (never '0.0 min' while work is left)."""
    if seconds < 1:
        return "finishing"
    if seconds < 90:
        return f"ETA {seconds:.0f} s"
    if seconds < 3600:
        return f"ETA {seconds / 60:.0f} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"ETA {hours} h {rest // 60:02d} min"


def coloured_key(entries: list[tuple[str, str]]) -> str:
    """A plot's key as coloured words for its title: a legend inside the plot would cover the curves."""
    return " · ".join(f"<span style='color:{colour}'>━ {name}</span>" for name, colour in entries)


class TrainingPanel(QtWidgets.QWidget):
    model_exported = QtCore.Signal(str)  # a pre-training run's export: listed, not selected
    classifier_ready = QtCore.Signal(str)  # the user's own fine-tuning job: listed and selected
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
        self.running_job = ""
        self.classifier_out = ""  # where the running fine-tuning job writes its bundle
        self._finetune_args: list[str] = []  # a cancelled probe is resumed by running it again (cached)
        self.val_auc: dict[str, float] = {}

        self.job = QtWidgets.QComboBox()
        self.job.addItem("pre-train (images + reports)", PRETRAIN)
        self.job.addItem("fine-tune a classifier", FINETUNE)
        self.job.currentIndexChanged.connect(self._job_changed)
        self.images = QtWidgets.QLineEdit()
        self.images.setPlaceholderText("ImageFolder: one sub-folder per class (NORMAL, PNEUMONIA, …)")
        self.image_root = QtWidgets.QLineEdit()
        self.image_root.setPlaceholderText("Folder the CSV's image paths start from (default: the CSV's folder)")
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(FINETUNE_MODES)
        self.mode.setToolTip("probe: a linear head on the frozen image tower, calibrated on validation patients "
                             "(minutes on a CPU, no torch). partial: the top blocks of the tower train with the "
                             "head; full: every layer (both need the time budget, best on a GPU; early stopping on "
                             "validation AUC). All three end in a calibrated classifier.")
        self.corpus = QtWidgets.QLineEdit()
        self.corpus.setPlaceholderText("Reports: Open-i XML folder or .tgz, CSV, TXT (pre-training)")
        self.mask = QtWidgets.QDoubleSpinBox()
        self.mask.setRange(0.0, 0.9)
        self.mask.setSingleStep(0.05)
        self.mask.setValue(0.75)
        self.mask_strategy = QtWidgets.QComboBox()
        self.mask_strategy.addItems(list(MASK_STRATEGIES))
        self.mask_strategy.setToolTip("Which patches a step drops: random (MedFLIP), integrity (our reading of "
                                      "MLIP: low-information patches first) or attention (our reading of XLIP: "
                                      "text-similar patches first; a scoring pass costs ~40 % of a CPU step). "
                                      "The Mask sampling tab shows each on your image.")
        mask_row = QtWidgets.QWidget()
        mask_layout = QtWidgets.QHBoxLayout(mask_row)
        mask_layout.setContentsMargins(0, 0, 0, 0)
        mask_layout.addWidget(self.mask)
        mask_layout.addWidget(self.mask_strategy, 1)
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
        self.decoding = decoding_choice()
        self.form = form = QtWidgets.QFormLayout()
        form.addRow("Job", self.job)
        form.addRow("Images", self._images_row())
        form.addRow("Image root", self._with_browse(self.image_root, folder=True))
        form.addRow("Mode", self.mode)
        form.addRow("Reports", self._with_browse(self.corpus, folder=False))
        form.addRow("Mask ratio", mask_row)
        form.addRow("Time budget", self.budget)
        form.addRow("Max steps", self.max_steps)
        form.addRow("Batch size", self.batch)
        form.addRow("Image size", self.image_size)
        device_row = QtWidgets.QWidget()  # one row for both: the plots below need the height
        device_layout = QtWidgets.QHBoxLayout(device_row)
        device_layout.setContentsMargins(0, 0, 0, 0)
        device_layout.addWidget(self.device)
        self.decoding_label = QtWidgets.QLabel("decode images")
        device_layout.addWidget(self.decoding_label)
        device_layout.addWidget(self.decoding, 1)
        form.addRow("Device", device_row)
        self._pretrain_only = [self.corpus.parentWidget() or self.corpus, mask_row, self.max_steps, self.batch,
                               self.image_size]
        self._finetune_only = [self.image_root.parentWidget() or self.image_root, self.mode]

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
        self.resume_folder_button = QtWidgets.QPushButton("Resume folder…")
        self.resume_folder_button.setToolTip("Continue any pre-training run folder from its latest checkpoint")
        self.resume_folder_button.clicked.connect(self._choose_run_folder)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.resume_button, self.resume_folder_button):
            buttons.addWidget(b)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%p %")
        self.stats = QtWidgets.QLabel("Idle")
        self.stats.setWordWrap(True)
        pg.setConfigOptions(antialias=True)
        loss_key = [("total", "#e6e6e6"), ("contrastive", "#4fa3ff"), ("svd", "#ffb347")]
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setTitle("loss  " + coloured_key(loss_key), size="9pt")
        self.loss_plot.setLabel("bottom", "step")
        self.curves = {key: self.loss_plot.plot(pen=pg.mkPen(colour, width=2 if key == "loss" else 1), name=name)
                       for key, (name, colour) in zip(("loss", "contrastive", "svd"), loss_key, strict=True)}
        sigma_key = [("positive pairs", "#5fd38d"), ("negative pairs", "#ff6b6b")]
        self.sigma_plot = pg.PlotWidget()
        self.sigma_plot.setTitle("σ₁ (token-level, normalised)  " + coloured_key(sigma_key), size="9pt")
        self.sigma_plot.setLabel("bottom", "step")
        for key, (name, colour) in zip(("sigma1_pos", "sigma1_neg"), sigma_key, strict=True):
            self.curves[key] = self.sigma_plot.plot(pen=pg.mkPen(colour, width=2), name=name)
        for curve in self.curves.values():  # a long run's curve costs what the plot's width costs, not its length
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.series: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self.curves}
        # Events only change self.series; a timer copies them to the curves in place (setData) at a bounded rate,
        # so a fast trainer cannot make the GUI repaint per event.
        self._stale: set[str] = set()
        self._plot_timer = QtCore.QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.setInterval(PLOT_REFRESH_MS)
        self._plot_timer.timeout.connect(self.flush_plots)
        self.log = QtWidgets.QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("Trainer log")

        self.auc_label = QtWidgets.QLabel()
        self.auc_label.setWordWrap(True)
        self.results = ClassifierResults()
        curves = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        curves.addWidget(self.loss_plot)
        curves.addWidget(self.sigma_plot)
        for plot in (self.loss_plot, self.sigma_plot):
            plot.setMinimumHeight(120)  # a curve stays readable however small the window
            plot.getAxis("left").setTickDensity(0.5)  # labels that do not overlap on a short plot
            plot.getAxis("left").setWidth(40)
        curves.setChildrenCollapsible(False)
        self.views = QtWidgets.QTabWidget()
        self.views.addTab(curves, "Training curves")
        self.views.addTab(self.results, "Classifier results")
        plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        plots.addWidget(self.views)
        plots.addWidget(self.log)
        plots.setStretchFactor(0, 4)
        plots.setStretchFactor(1, 1)
        plots.setSizes([480, 90])
        self.log.setMinimumHeight(40)
        plots.setCollapsible(0, False)
        # The form scrolls and the plots keep their minimum: at 1280x800 (about 740 px of usable height on a
        # laptop) the tab never makes the window taller than the screen; the splitter handle gives either more.
        controls = QtWidgets.QWidget()
        top = QtWidgets.QVBoxLayout(controls)
        top.setContentsMargins(0, 0, 0, 0)
        top.addLayout(form)
        self.controls = QtWidgets.QScrollArea()
        self.controls.setWidget(controls)
        self.controls.setWidgetResizable(True)
        self.controls.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.controls.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls.setMinimumHeight(90)
        self.controls.setMinimumWidth(controls.minimumSizeHint().width()
                                      + self.controls.verticalScrollBar().sizeHint().width())
        self.split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        status = QtWidgets.QWidget()  # buttons, progress and status always in sight, with the plots
        below = QtWidgets.QVBoxLayout(status)
        below.setContentsMargins(0, 0, 0, 0)
        below.addLayout(buttons)  # Start/Cancel/Resume never scroll out of sight
        below.addWidget(self.progress)
        below.addWidget(self.stats)
        below.addWidget(self.auc_label)
        below.addWidget(plots, 1)
        self.split.addWidget(self.controls)
        self.split.addWidget(status)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(0, 0)
        self.split.setStretchFactor(1, 1)
        self._sized = False
        self.auc_label.setVisible(False)  # shown by a fine-tuning job's evaluations
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.split)
        self._job_changed()

    def showEvent(self, event) -> None:
        """First shown: the whole form if the plots keep their minimum, else the plots' minimum and a scroll."""
        super().showEvent(event)
        if not self._sized and self.split.height() > 0:
            self._sized = True
            total = sum(self.split.sizes())
            below = self.split.widget(1).minimumSizeHint().height()
            form = min(self.controls.widget().sizeHint().height() + 4, max(total - below, 90))
            self.split.setSizes([form, total - form])

    def job_name(self) -> str:
        return self.job.currentData()

    def _job_changed(self) -> None:
        finetune = self.job_name() == FINETUNE
        for widget in self._pretrain_only:
            self.form.setRowVisible(widget, not finetune)
        for widget in (self.decoding_label, self.decoding):  # half of the device row: the trainer's flags
            widget.setVisible(not finetune)
        for widget in self._finetune_only:
            self.form.setRowVisible(widget, finetune)
        self.images.setPlaceholderText("ImageFolder (one sub-folder per class) or a label CSV (NIH or CheXpert style)"
                                       if finetune else "ImageFolder: one sub-folder per class (NORMAL, PNEUMONIA, …)")
        self.budget.setToolTip("The probe stops resumably when the time is up" if finetune else "")
        self.resume_button.setEnabled(self._can_resume())

    def _images_row(self) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.images, 1)
        folder = QtWidgets.QPushButton("Folder…")
        folder.clicked.connect(lambda: self._browse_images(folder=True))
        csv = QtWidgets.QPushButton("CSV…")
        csv.setToolTip("A label CSV (fine-tuning): NIH Data_Entry_2017 or CheXpert train.csv style")
        csv.clicked.connect(lambda: self._browse_images(folder=False))
        row.addWidget(folder)
        row.addWidget(csv)
        return box

    def _browse_images(self, folder: bool) -> None:
        if folder:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Image folder")
        else:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Label CSV", "", "CSV (*.csv)")
        if path:
            self.images.setText(path)

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
        """The trainer's arguments of a pre-training run (a new run folder unless resuming)."""
        if resume and self.run_dir:  # events to stdout, whatever the run's config says: the GUI reads them
            return ["--config", str(Path(self.run_dir) / RUN_CONFIG), "--resume", "--events", "-"]
        self.run_dir = str(user_data_dir() / "runs" / time.strftime("%Y%m%d-%H%M%S"))
        args = ["--images", self.images.text().strip(), "--mask-ratio", f"{self.mask.value():.2f}",
                "--mask-strategy", self.mask_strategy.currentText(),
                "--budget-minutes", f"{self.budget.value():g}", "--batch-size", str(self.batch.value()),
                "--image-size", str(self.image_size.value()), "--device", self.device.currentText(),
                "--out-dir", self.run_dir]
        if self.max_steps.value() > 0:
            args += ["--max-steps", str(self.max_steps.value())]
        if self.corpus.text().strip():
            args += ["--corpus", self.corpus.text().strip()]
        return args + list(self.decoding.currentData())

    def finetune_args(self) -> list[str]:
        """`medflip finetune` arguments: the images, the base model in the picker, a new bundle folder under the
        user's models (written there only when complete)."""
        images = self.images.text().strip()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.classifier_out = str(user_models_dir() / f"classifier-{Path(images).stem}-{stamp}")
        args = ["finetune", "--images", images, "--mode", self.mode.currentText(), "--out", self.classifier_out,
                "--budget-minutes", f"{self.budget.value():g}", "--json"]
        if self.image_root.text().strip():
            args += ["--image-root", self.image_root.text().strip()]
        if self.base_model is not None:
            args += ["--base", str(self.base_model)]
        if self.mode.currentText() != "probe":  # the tower modes train with torch, on the GPU when there is one
            args += ["--device", self.device.currentText()]
        return args

    def start(self, resume: bool = False, extra: list[str] | None = None) -> None:
        if self.process is not None:
            return
        if not resume and not self.images.text().strip():
            self.message.emit("Choose an image folder (or a label CSV, to fine-tune) to train on.")
            return
        job = self.job_name()
        missing = trainer_missing() if job == PRETRAIN or self.mode.currentText() != "probe" else None
        if missing:  # the light app without the trainer add-on: say what to install; the probe still runs
            self.log.appendPlainText(missing)
            self.stats.setText("Needs the trainer add-on, which is not installed (the probe works without it).")
            self.message.emit(missing)
            return
        if job == FINETUNE:
            if not (resume and self._finetune_args):
                self._finetune_args = self.finetune_args() + (extra or [])
            program, full = medflip_command(self._finetune_args)
            self.val_auc = {}
            self.auc_label.setText("")
            self.auc_label.setVisible(True)
        else:
            args = self.build_args(resume) + (extra or [])
            program, full = trainer_command([run_job(self.run_dir) if resume else PRETRAIN, *args])
        for series in self.series.values():
            series[0].clear()
            series[1].clear()
        self._stale.clear()
        for curve in self.curves.values():
            curve.setData([], [])
        self.events.clear()
        self.last_error = ""
        if job == PRETRAIN and resume:
            self.replay(read_run_events(self.run_dir))  # the plots continue the run's history
        self.running_job = job
        if job == PRETRAIN:  # the live curves, not an earlier fine-tuning's results, are what this run shows
            self.views.setCurrentIndex(0)
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
        self.resume_folder_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.stats.setText("Starting the trainer…" if job == PRETRAIN else "Starting the fine-tuning job…")

    def replay(self, events: list[Event]) -> None:
        """Rebuild the plots from a run's earlier events (its step events; nothing is logged again)."""
        for event in events:
            if isinstance(event, StepEvent):
                self._plot_step(event)
        self.flush_plots()
        if events:
            self.log.appendPlainText(f"plots rebuilt from {len(events)} earlier events of this run")

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
        self.job.setCurrentIndex(self.job.findData(PRETRAIN))
        self.run_dir = str(Path(folder))
        self.start(resume=True)
        return True

    def _can_resume(self) -> bool:
        if self.job_name() == FINETUNE:
            # a cancelled probe continues from its embedding cache; one that failed (bad input) starts afresh
            return (bool(self._finetune_args) and self.running_job == FINETUNE and not self.last_error
                    and not self._finished_ok())
        return bool(self.run_dir) and not run_problem(self.run_dir)

    def _finished_ok(self) -> bool:
        done = self._done_event()
        return done is not None and done.status == "completed"

    def set_base_model(self, bundle: str | Path) -> None:
        """The model in the picker: fine-tuning starts from it."""
        self.base_model = Path(bundle)

    def shut_down(self, settings) -> None:
        """The window closes: a running job checkpoints and stops; a running export is handed over to finish on
        its own and be picked up at the next start (app/export_handover.py)."""
        if self.process is not None:
            self.cancel()
            self.process.waitForFinished(30000)
        export_handover.hand_over(self.export_process, settings)

    def _done_event(self) -> DoneEvent | None:
        return next((e for e in reversed(self.events) if isinstance(e, DoneEvent)), None)

    def cancel(self) -> None:
        if self.process is None:
            return
        if self._done_event() is not None:  # the run has ended and the trainer is exiting: nothing to cancel
            self.stats.setText("The run has already ended; waiting for the trainer to exit…")
            return
        self.stats.setText("Cancelling after the current step…")
        self.process.terminate()  # SIGTERM: the trainer checkpoints and exits cleanly

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        kept = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            record = parse_event_line(line)
            event = event_from_record(record) if record is not None else None
            if event is not None:
                kept.append(json.dumps(record))
                self.handle_event(event)
        self._keep_events(kept)

    def _keep_events(self, lines: list[str]) -> None:
        """Append a pre-training run's events to RUN/events.jsonl, so a resume can rebuild its plots."""
        if not lines or self.running_job != PRETRAIN or not self.run_dir or not Path(self.run_dir).is_dir():
            return
        try:
            with open(Path(self.run_dir) / RUN_EVENTS, "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        except OSError as exc:  # the plots still work; only a later resume would miss this history
            self.log.appendPlainText(f"could not keep the events in the run folder: {exc}")

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
            self._show_auc(event)
        elif isinstance(event, CheckpointEvent):
            self.log.appendPlainText(f"checkpoint: {event.path}")
        elif isinstance(event, SkippedStepEvent):
            self.log.appendPlainText(f"step {event.step} skipped: {event.reason}")
        elif isinstance(event, DoneEvent):
            status = "cancelled — checkpoint kept, Resume continues it" if event.cancelled else "completed"
            self.stats.setText(f"Training {status} at step {event.step}.")
            self.cancel_button.setEnabled(False)  # the run has ended: a late Cancel has nothing to stop
            self.log.appendPlainText(f"done: {status}")
        elif isinstance(event, ErrorEvent):
            self.last_error = event.message or "unknown error"
            self.stats.setText(f"Training failed: {self.last_error}")
            self.message.emit(f"Training failed: {self.last_error}")

    def _show_auc(self, event: EvalEvent) -> None:
        """Validation ROC AUC per class (with its patient-level CI when the job gives one)."""
        per_class = event.metrics.get("val_auc_per_class")
        if not isinstance(per_class, dict):
            return
        self.val_auc = {c: float(v) for c, v in per_class.items() if v is not None}
        ci = event.metrics.get("val_auc_ci95") or {}
        parts = [f"<b>{c}</b> {v:.3f}" + (f" [{ci[c][0]:.3f}–{ci[c][1]:.3f}]" if c in ci else "")
                 for c, v in self.val_auc.items()]
        where = event.metrics.get("data_set", "validation")
        patients = event.metrics.get("patients")
        from html import escape  # here, not at the top: a targeted edit of a file others are changing

        small = event.metrics.get("small_validation")  # the job's warning: too few validation patients
        self.auc_label.setText(f"Validation ROC AUC per class ({where}"
                               + (f", {patients} patients" if patients else "") + "; 95 % CI over patients): "
                               + ", ".join(parts)
                               + (f"<br><b style='color:#ffb347'>⚠ {escape(small)}</b>" if small else ""))

    def _plot_step(self, event: StepEvent) -> None:
        for key in self.series:
            value = getattr(event, key, None)
            if isinstance(value, int | float) and value == value:
                xs, ys = self.series[key]
                while xs and xs[-1] >= event.step:  # a resumed run repeats the steps after its checkpoint
                    xs.pop()
                    ys.pop()
                xs.append(event.step)
                ys.append(float(value))
                self._stale.add(key)
        if self._stale and not self._plot_timer.isActive():
            self._plot_timer.start()
        self.progress.setValue(progress_percent(event))
        eta = event.eta_s
        if self.running_job == FINETUNE and self.mode.currentText() == "probe":
            self.stats.setText(f"embedding images: {event.step} of {event.total_steps or '?'} new "
                               f"({event.samples_per_s:.1f} images/s)")
            return
        self.stats.setText(f"step {event.step}  loss {event.loss:.3f}  {event.samples_per_s:.1f} samples/s  "
                           f"{format_eta(eta)}" if eta is not None else f"step {event.step}")

    def flush_plots(self) -> None:
        """Copy the series that changed since the last refresh into their curves."""
        for key in self._stale:
            xs, ys = self.series[key]
            self.curves[key].setData(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
        self._stale.clear()

    def _process_error(self, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.last_error = "the trainer could not be started"
            self.message.emit("Training failed: the trainer process could not be started.")

    def _finished(self, code: int, status: QtCore.QProcess.ExitStatus) -> None:
        """The trainer exited. Its `done` event is the run's true state: a process killed while it exits (a late
        Cancel, a logout) after saying done has lost nothing, so it is not reported as a failure."""
        self._read_stdout()
        self.flush_plots()
        done = self._done_event()
        abnormal = status == QtCore.QProcess.ExitStatus.CrashExit or code != 0
        crashed = done is None and (status == QtCore.QProcess.ExitStatus.CrashExit
                                    or (code != 0 and not self.last_error))
        if abnormal and done is not None and not self.last_error:
            self.log.appendPlainText(f"the trainer was stopped while exiting (exit code {code}), after the run had "
                                     f"ended ({done.status} at step {done.step}); nothing is lost")
            code = 0
        if crashed:
            self.last_error = f"the trainer stopped unexpectedly (exit code {code})"
            self.stats.setText(f"Training failed: {self.last_error}. The last checkpoint is kept.")
            self.message.emit(f"Training failed: {self.last_error}")
        self.process = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.resume_folder_button.setEnabled(True)
        self.resume_button.setEnabled(self._can_resume())
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
        self.resume_button.setEnabled(False)
        self.log.appendPlainText(f"classifier ready: {out}")
        self.stats.setText(f"Classifier ready: {Path(out).name} (selected in the Model picker).")
        self.auc_label.setVisible(False)  # the results view below has the same figures, with their curves
        self.show_classifier(out)
        self.classifier_ready.emit(out)

    def show_classifier(self, bundle: str) -> None:
        """The results view of a classifier bundle ('' for a model that is none: the view stays as it is)."""
        if bundle and self.results.show_bundle(bundle):
            self.views.setCurrentWidget(self.results)

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
