"""The Training tab's form: which job, on what, and how (pre-training or fine-tuning a classifier), and the
command-line arguments it stands for. No process control here (training_panel.py) and no plots (plots.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.training.run_folders import FINETUNE, PRETRAIN
from medflip_core.bundles.model_store import list_clip_models, resolve_model
from medflip_core.data.image_folder import flat_folder_problem
from medflip_core.errors import MedflipError
from medflip_core.masking import MASK_STRATEGIES, MAX_MASK_RATIO
from medflip_core.resources import resources_dir

FROM_SCRATCH = "random weights (from scratch)"
CONTINUE_LR = 1.5e-4  # the peak learning rate of the default model's own continued phase (configs/default-model-v4-224)

NOTICE_STYLE = "color: #8a4b00; background: #fff4e0; border: 1px solid #e0b070; padding: 3px;"
DEFAULT_MIM_WEIGHT = 1.0  # the reconstruction's weight a new run starts with (configs/default-model-v4.yaml)
FINETUNE_MODES = ["probe", "partial", "full"]  # probe: frozen tower, no torch; partial/full: the trainer tunes it


def _number(value: float) -> str:
    """A field's bound as a person writes it: 0.9, 0, 10,000,000."""
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def fitted(box: QtWidgets.QComboBox) -> QtWidgets.QComboBox:
    """A list as narrow as 14 characters when the form is: the full text shows when there is room, and in the open
    list (model names and paths are long)."""
    box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(14)
    return box


def decoding_choice() -> QtWidgets.QComboBox:
    """Where the trainer decodes images: in its loop, in loader threads, or in worker processes (the trainer's
    --num-workers / --decode-in); each item's data is the flags it adds."""
    workers = max(1, min(4, (os.cpu_count() or 2) - 1))
    box = QtWidgets.QComboBox()
    box.addItem("in the training loop", [])
    box.addItem(f"{workers} loader threads", ["--num-workers", str(workers)])
    box.addItem(f"{workers} worker processes (JPEG 2000 DICOMs)",
                ["--num-workers", str(workers), "--decode-in", "processes"])
    fitted(box)
    box.setToolTip("Decoded images are kept in memory after the first epoch. Threads overlap decoding with the "
                   "step where the decoder allows it (PNG, JPEG, uncompressed DICOM); JPEG 2000's decoder does "
                   "not, so its folders decode faster in worker processes. On a 2-core CPU the loop is as fast.")
    return box


class TrainingForm(QtWidgets.QWidget):
    """The fields of a training job; rows that do not apply to the chosen job are hidden."""

    job_changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = QtWidgets.QComboBox()
        self.job.addItem("pre-train (images + reports)", PRETRAIN)
        self.job.addItem("fine-tune a classifier", FINETUNE)
        self.job.currentIndexChanged.connect(self._job_changed)
        self.name = QtWidgets.QLineEdit()
        self.name.setPlaceholderText("optional (else the date and time)")
        self.name.setToolTip("Names the run folder and the model or classifier it makes. Letters, digits, '.', "
                             "'_' and '-' are kept (others become '-'); the date and time are added, so two runs "
                             "never share a folder")
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
        self.base = fitted(QtWidgets.QComboBox())  # the CLIP model a fine-tuning starts from: never a classifier
        self.base.setToolTip("The CLIP model whose image tower is fine-tuned. A classifier cannot be a base: with a "
                             "classifier selected in the Model picker, this is the model it came from.")
        self.start_from = fitted(QtWidgets.QComboBox())  # the model a pre-training continues, or random weights
        self._start_chosen: str | None = None  # what the user picked in it (None: it follows the picker's model)
        self.start_from.activated.connect(self._start_picked)
        self.start_from.setToolTip(
            "The model whose image and text towers the pre-training continues (at a peak learning rate of "
            f"{CONTINUE_LR:g}, the image tower's in the default model's own continued phase), or random weights: a "
            "tower from scratch needs hours of "
            "images (a run of minutes from scratch makes a model that has learnt little, with scores that look "
            "like a trained model's)")
        self.corpus = QtWidgets.QLineEdit()
        self.corpus.setPlaceholderText("Reports: Open-i XML folder or .tgz, CSV, TXT (pre-training)")
        self.mask = QtWidgets.QDoubleSpinBox()
        self.mask.setRange(0.0, MAX_MASK_RATIO)
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
        self.mim_weight = QtWidgets.QDoubleSpinBox()
        self.mim_weight.setRange(0.0, 10.0)
        self.mim_weight.setSingleStep(0.25)
        self.mim_weight.setValue(DEFAULT_MIM_WEIGHT)
        self.mim_weight.setSpecialValueText("off")
        self.mim_weight.setToolTip("Masked image modelling: a light decoder reconstructs the dropped patches from "
                                   "the kept ones, and this is the weight of its loss beside the image-text loss "
                                   "(off: no decoder). The decoder is used only in training: exported models never "
                                   "carry it. Images without labels need it.")
        self.unlabelled = QtWidgets.QListWidget()
        self.unlabelled.setToolTip("Folders of radiographs nobody has labelled (any layout, searched recursively): "
                                   "they teach the image tower through the reconstruction only. Files of "
                                   "validation patients are left out.")
        self.unlabelled.setMaximumHeight(64)
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
        self.notice = QtWidgets.QLabel()  # what restore() could not take as it was, in a sentence
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.rows = rows = QtWidgets.QFormLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.addRow(self.notice)
        rows.addRow("Job", self.job)
        rows.addRow("Name", self.name)
        rows.addRow("Images", self._images_row())
        rows.addRow("Image root", self._with_browse(self.image_root, folder=True))
        rows.addRow("Mode", self.mode)
        rows.addRow("Base model", self.base)
        rows.addRow("Start from", self.start_from)
        rows.addRow("Reports", self._with_browse(self.corpus, folder=False))
        rows.addRow("Mask ratio", mask_row)
        rows.addRow("Reconstruction", self.mim_weight)
        self._unlabelled_row = self._unlabelled_list()
        rows.addRow("Images without labels", self._unlabelled_row)
        rows.addRow("Time budget", self.budget)
        rows.addRow("Max steps", self.max_steps)
        rows.addRow("Batch size", self.batch)
        rows.addRow("Image size", self.image_size)
        device_row = QtWidgets.QWidget()  # one row for both: the plots below need the height
        device_layout = QtWidgets.QHBoxLayout(device_row)
        device_layout.setContentsMargins(0, 0, 0, 0)
        device_layout.addWidget(self.device)
        self.decoding_label = QtWidgets.QLabel("decode images")
        device_layout.addWidget(self.decoding_label)
        device_layout.addWidget(self.decoding, 1)
        rows.addRow("Device", device_row)
        self._pretrain_only = [self.start_from, self.corpus.parentWidget() or self.corpus, mask_row, self.mim_weight,
                               self._unlabelled_row, self.max_steps, self.batch, self.image_size]
        self._finetune_only = [self.mode, self.base]
        self.rows.setRowVisible(self.notice, False)
        self._job_changed()
        try:  # filled at once, the default model chosen (the panel makes the picker's model the default when it
            default = str(resolve_model(None))  # loads): Start from is never empty, so never a silent scratch
        except MedflipError:
            default = ""
        self.set_base_models(self.installed_models(), default)

    @staticmethod
    def installed_models() -> list[tuple[str, str]]:
        """(label, bundle folder) of every CLIP model installed (bundled and the user's; never a classifier)."""
        return [(f"{e.name} ({e.source})", str(e.path)) for e in list_clip_models()]

    def job_name(self) -> str:
        return self.job.currentData()

    def name_slug(self) -> str:
        """The typed name as a folder name ('' when none): a GUI walk found only timestamps to tell models apart."""
        return re.sub(r"[^\w.-]+", "-", self.name.text().strip())[:60].strip("-._")

    def fill_finetune(self, images: str, image_root: str = "", mode: str = "partial") -> None:
        """A fine-tune of this label CSV (e.g. the Labelling tab's) set up, for the user to review and start."""
        self.job.setCurrentIndex(self.job.findData(FINETUNE))
        self.images.setText(images)
        self.image_root.setText(image_root)
        self.mode.setCurrentText(mode)

    def _job_changed(self) -> None:
        finetune = self.job_name() == FINETUNE
        for widget in self._pretrain_only:
            self.rows.setRowVisible(widget, not finetune)
        for widget in (self.decoding_label, self.decoding):  # half of the device row: the trainer's flags
            widget.setVisible(not finetune)
        for widget in self._finetune_only:
            self.rows.setRowVisible(widget, finetune)
        self.images.setPlaceholderText("ImageFolder (one sub-folder per class) or a label CSV (NIH or CheXpert "
                                       "style, e.g. the Labelling tab's labels.csv)")
        self.budget.setToolTip("The probe stops resumably when the time is up" if finetune else "")
        self.job_changed.emit()

    def set_base_models(self, models: list[tuple[str, str]], default: str) -> None:
        """The CLIP models (label, bundle folder) fine-tuning can start from, `default` selected."""
        self.base.blockSignals(True)
        self.base.clear()
        for label, path in models:
            self.base.addItem(label, path)
        index = self.base.findData(default)
        if index < 0 and default:
            self.base.addItem(f"{Path(default).name} (folder)", default)
            index = self.base.count() - 1
        self.base.setCurrentIndex(max(index, 0))
        self.base.blockSignals(False)
        self.start_from.clear()  # follows the picker's model, unless the user chose in this list
        for i in range(self.base.count()):
            self.start_from.addItem(self.base.itemText(i), self.base.itemData(i))
        self.start_from.addItem(FROM_SCRATCH, "")
        self.select_start(self._start_chosen if self._start_chosen is not None else self.base.currentData())

    def _start_picked(self, _index: int) -> None:
        self._start_chosen = self.start_from.currentData()

    def select_start(self, path: str | None) -> None:
        """Start from `path` (a model folder; "" or None: random weights), added to the list if it is not there."""
        index = self.start_from.findData(path or "")
        if index < 0 and path:
            self.start_from.insertItem(self.start_from.count() - 1, f"{Path(path).name} (folder)", path)
            index = self.start_from.findData(path)
        self.start_from.setCurrentIndex(index if index >= 0 else self.start_from.count() - 1)

    def base_model(self) -> Path | None:
        """The chosen base model's folder (None: none installed; `medflip finetune` then uses its default)."""
        path = self.base.currentData()
        return Path(path) if path else None

    # what the form remembers between sessions (app/settings.py, key "training_form")
    _REMEMBERED = ("images", "image_root", "corpus")

    def state(self) -> dict:
        """The form's fields as plain values (the Training tab saves them when the window closes)."""
        return {"job": self.job_name(), "mode": self.mode.currentText(), "mask": self.mask.value(),
                "mask_strategy": self.mask_strategy.currentText(), "budget": self.budget.value(),
                "max_steps": self.max_steps.value(), "batch": self.batch.value(), "device": self.device.currentText(),
                "image_size": self.image_size.value(), "decoding": self.decoding.currentIndex(),
                **{name: getattr(self, name).text() for name in self._REMEMBERED}}

    def restore(self, state: dict, source: str = "the saved settings") -> list[str]:
        """Fields from `state()` (or a run's settings). A value the field cannot hold as it is (out of the field's
        range, not a number, an unknown choice) is never clamped or rounded into it silently: the field keeps what
        it had and the form's notice says so, naming `source`. Returns those sentences."""
        if not isinstance(state, dict):
            return []
        problems: list[str] = []

        def combo(box: QtWidgets.QComboBox, key: str, label: str, data: bool = False) -> None:
            value = state.get(key)
            if value is None:
                return
            index = box.findData(value) if data else box.findText(str(value))
            if index >= 0:
                box.setCurrentIndex(index)
            else:
                choices = ", ".join(box.itemText(i) for i in range(box.count()))
                problems.append(f"{label} in {source}: {value!r} is not one of the choices ({choices}); the form "
                                f"keeps {box.currentText()}.")

        combo(self.job, "job", "Job", data=True)
        combo(self.mode, "mode", "Mode")
        combo(self.mask_strategy, "mask_strategy", "Mask strategy")
        combo(self.device, "device", "Device")
        for box, key, label in ((self.mask, "mask", "Mask ratio"), (self.budget, "budget", "Time budget"),
                                (self.max_steps, "max_steps", "Max steps"), (self.batch, "batch", "Batch size"),
                                (self.image_size, "image_size", "Image size")):
            if state.get(key) is not None:
                problem = self._set_number(box, state[key])
                if problem:
                    problems.append(f"{label} in {source}: {problem}; the form keeps {box.text()}.")
        decoding = state.get("decoding")
        if isinstance(decoding, int) and 0 <= decoding < self.decoding.count():
            self.decoding.setCurrentIndex(decoding)
        for name in self._REMEMBERED:
            if isinstance(state.get(name), str):
                getattr(self, name).setText(state[name])
        self.notice.setText(" ".join(problems))
        self.rows.setRowVisible(self.notice, bool(problems))
        return problems

    @staticmethod
    def _set_number(box: QtWidgets.QSpinBox | QtWidgets.QDoubleSpinBox, value: object) -> str | None:
        """Put `value` in the box if the box holds it exactly; otherwise leave the box and say why ("1.5 is
        outside 0 to 0.9")."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{value!r} is not a number"
        low, high = box.minimum(), box.maximum()
        if not low <= value <= high:  # NaN too
            return f"{value:g} is outside the allowed range {_number(low)} to {_number(high)}"
        if isinstance(box, QtWidgets.QDoubleSpinBox):
            if round(value, box.decimals()) != value:
                return f"{value:g} has more than the field's {box.decimals()} decimals"
        elif value != int(value):
            return f"{value:g} is not a whole number"
        box.setValue(type(box.value())(value))
        return None

    def show_run_config(self, config: dict) -> None:
        """A pre-training run's own settings (RUN/config.json), so that a resumed run's form says what it runs."""
        images = config.get("images")
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        budget = config.get("budget_minutes")
        self.restore({"job": PRETRAIN, "images": os.pathsep.join(images) if isinstance(images, list) else images,
                      "image_root": config.get("image_root") or "", "corpus": config.get("corpus") or "",
                      "mask": config.get("mask_ratio"), "mask_strategy": config.get("mask_strategy"), "budget": budget,
                      "max_steps": config.get("max_steps") or 0, "batch": config.get("batch_size"),
                      "device": config.get("device"), "image_size": model.get("image_size")},
                     source="the run's settings (config.json; a resumed run uses them as they are)")
        self.select_start(config.get("init_from") or "")  # what the run started from, not today's default

    def pretrain_args(self, run_dir: str) -> list[str]:
        """The trainer's arguments of a new pre-training run writing to `run_dir`."""
        images = self.images.text().strip()
        if images and Path(images).is_file() and Path(images).suffix.lower() != ".csv":
            raise ValueError(f"Pre-training reads an image folder with one sub-folder per class or a label CSV, "
                             f"not {Path(images).name}. A folder of films without labels goes under Images without "
                             "labels.")
        problem = (flat_folder_problem(images, PRETRAIN, "Images without labels")
                   if images and Path(images).is_dir() else "")
        if problem:  # said before the trainer starts (it would refuse it after a minute of starting)
            raise ValueError(problem)
        args = ["--images", images, "--mask-ratio", f"{self.mask.value():.2f}",
                "--mask-strategy", self.mask_strategy.currentText(),
                "--budget-minutes", f"{self.budget.value():g}", "--batch-size", str(self.batch.value()),
                "--image-size", str(self.image_size.value()), "--device", self.device.currentText(),
                "--out-dir", run_dir]
        if self.max_steps.value() > 0:
            args += ["--max-steps", str(self.max_steps.value())]
        if Path(images).is_file() and self.image_root.text().strip():  # a label CSV's paths start there
            args += ["--image-root", self.image_root.text().strip()]
        if self.start_from.currentData():  # a GUI walk: every run from the app started from a random tower
            args += ["--init-from", self.start_from.currentData(), "--lr", f"{CONTINUE_LR:g}"]
        if not self.corpus.text().strip():  # the trainer would refuse it in command-line words (--corpus)
            bundled = resources_dir() / "corpora" / "NLMCXR_reports.tgz"
            raise ValueError("Pre-training learns from report text beside the images: choose the Reports (an "
                             "Open-i XML folder or .tgz, a CSV or a TXT of report sentences)"
                             + (f", e.g. the Indiana University reports bundled at {bundled}" if bundled.is_file()
                                else "") + ".")
        args += ["--corpus", self.corpus.text().strip()]
        folders = self.unlabelled_folders()
        if folders and self.mim_weight.value() <= 0:
            raise ValueError("Images without labels teach the model only through the reconstruction: set "
                             "Reconstruction above 0, or remove them.")
        if self.mim_weight.value() > 0:
            args += ["--mim-weight", f"{self.mim_weight.value():g}"]
        for folder in folders:
            args += ["--unlabelled", folder]
        return args + list(self.decoding.currentData())

    def unlabelled_folders(self) -> list[str]:
        return [self.unlabelled.item(i).text() for i in range(self.unlabelled.count())]

    def add_unlabelled(self, folder: str) -> None:
        if folder and folder not in self.unlabelled_folders():
            self.unlabelled.addItem(folder)

    def finetune_args(self, out: str, base: Path | None) -> list[str]:
        """`medflip finetune` arguments: a classifier bundle at `out`, starting from the bundle `base`."""
        args = ["finetune", "--images", self.images.text().strip(), "--mode", self.mode.currentText(),
                "--out", out, "--budget-minutes", f"{self.budget.value():g}", "--json"]
        if self.image_root.text().strip():
            args += ["--image-root", self.image_root.text().strip()]
        if base is not None:
            args += ["--base", str(base)]
        if self.mode.currentText() != "probe":  # the tower modes train with torch, on the GPU when there is one
            args += ["--device", self.device.currentText()]
        return args

    @staticmethod
    def _beside(field: QtWidgets.QWidget, buttons: list[QtWidgets.QPushButton],
                stacked: bool = False) -> QtWidgets.QWidget:
        """A form row: the field stretching, its buttons to the right (one above the other when `stacked`)."""
        box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field, 1)
        column = QtWidgets.QVBoxLayout() if stacked else row
        for button in buttons:
            column.addWidget(button)
        if stacked:
            column.addStretch(1)
            row.addLayout(column)
            # no taller than the list: a tall form (the Training tab's wide layout) leaves its spare height below
            box.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Maximum)
        return box

    def _unlabelled_list(self) -> QtWidgets.QWidget:
        add = QtWidgets.QPushButton("Add…")
        add.clicked.connect(lambda: self.add_unlabelled(
            QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of images without labels")))
        remove = QtWidgets.QPushButton("Remove")
        remove.clicked.connect(lambda: [self.unlabelled.takeItem(self.unlabelled.row(i))
                                        for i in self.unlabelled.selectedItems()])
        return self._beside(self.unlabelled, [add, remove], stacked=True)

    def _images_row(self) -> QtWidgets.QWidget:
        folder = QtWidgets.QPushButton("Folder…")
        folder.clicked.connect(lambda: self._browse_images(folder=True))
        csv = self.csv_button = QtWidgets.QPushButton("CSV…")
        csv.setToolTip("A label CSV: NIH Data_Entry_2017 or CheXpert train.csv style, or the Labelling tab's "
                       "labels.csv. Pre-training maps its labels into the model's label space and leaves out films "
                       "labelled only outside it; its image paths start at Image root.")
        csv.clicked.connect(lambda: self._browse_images(folder=False))
        return self._beside(self.images, [folder, csv])

    def _browse_images(self, folder: bool) -> None:
        if folder:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Image folder")
        else:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Label CSV", "", "CSV (*.csv)")
        if path:
            self.images.setText(path)

    def _with_browse(self, edit: QtWidgets.QLineEdit, folder: bool) -> QtWidgets.QWidget:
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
        return self._beside(edit, [button])
