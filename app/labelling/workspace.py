"""The Labelling tab: label a folder film by film with the keyboard; the model learns as you go and the job ends
in a classifier. A view over the Qt-free `medflip_core.labelling.job.LabellingJob`: answers are written there
(journal + CSV, fsynced) before the next film shows; embedding the folder, refitting the head and making the
classifier run in worker threads (the refits in a worker process: `medflip_core.labelling.refit_process`). Films are
decoded off this thread (`film_reader`), the likely next one ahead (again after a refit, whose head may choose
another), so the next one is usually on screen at once; when it is not, the viewer says it is being read (never the
film before under the new name) and answer keys wait for it.

Keys (while the tab is in front): 1-9 the class on the button with that number (findings: toggle it, Enter
confirms; none ticked = No Finding), S skip, U or Ctrl+Z undo, B back. The model's suggestion and probability are
shown as text beside the buttons, never as a pre-selected button.

Why one module: the tab's layout and its steps (answer, show, refit, make) share its widgets and job; the parts that
stand alone are apart: `keys` (the key filter), `film_reader` (films read off this thread), `curve` (the plot).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.labelling.curve import LearningCurve
from app.labelling.film_reader import FilmReader
from app.labelling.keys import LabelKeys
from app.panels.classifier_results import read_validation
from app.text_colours import NOTE, tint
from app.viewer.viewer import ImageViewer
from app.wide_tab import WideWhileShown
from app.workers import Task, TaskRunner
from medflip_core.data.patient_sides import MIN_PATIENTS_FOR_CLASSIFIER
from medflip_core.errors import MedflipError
from medflip_core.labelling import refit_process
from medflip_core.labelling.job import (
    PLACE_NAMES,
    LabellingJob,
    label_place,
    make_classifier,
)
from medflip_core.labelling.order import ORDER_NAMES

DEFAULT_CLASSES = "No Finding, Pneumonia"


class LabellingWorkspace(WideWhileShown, QtWidgets.QWidget):
    classifier_ready = QtCore.Signal(str)  # a bundle folder: the window lists and selects it
    finetune_requested = QtCore.Signal(str, str)  # label CSV, image root: the Training tab sets up a fine-tune
    message = QtCore.Signal(str)
    resolved = QtCore.Signal()  # a folder is ready to label: an earlier folder's error is obsolete

    def __init__(self, engine: Callable[[], object] | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._engine = engine or (lambda: None)  # the window's current model; used when it has a text encoder
        self.tasks = TaskRunner()
        self.job: LabellingJob | None = None
        self.films_read = FilmReader(self.tasks, self._arrived, self._read_failed)
        self._shown: Path | None = None  # the film whose pixels are in the viewer
        self._refitting = False
        self.refits_done = 0  # heads refitted in the background since the tab was made (the bench reads it)
        self._build()
        self._keys()
        app = QtCore.QCoreApplication.instance()
        if app is not None:  # quitting: the refits' worker process ends with the app
            app.aboutToQuit.connect(refit_process.close)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)  # the label keys work as soon as the tab is in front

    # --- layout ----------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.folder = QtWidgets.QLineEdit()
        self.folder.setPlaceholderText("folder of films to label")
        choose = QtWidgets.QPushButton("Choose…")
        choose.clicked.connect(self._choose_folder)
        self.classes = QtWidgets.QLineEdit(DEFAULT_CLASSES)
        self.classes.setToolTip("The classes, separated by commas (typed, or names of the model's label space)")
        self.kind = QtWidgets.QComboBox()
        self.kind.addItems(["one class per film", "findings present / absent"])
        self.order = QtWidgets.QComboBox()
        for key, name in ORDER_NAMES.items():
            self.order.addItem(name, key)
        self.place = QtWidgets.QComboBox()
        for key, name in PLACE_NAMES.items():
            self.place.addItem(f"labels {name}", key)
        self.start_button = QtWidgets.QPushButton("Start / resume")
        self.start_button.clicked.connect(self.start)
        self.folder.returnPressed.connect(self.start)  # a typed folder starts with Enter, as a user expects
        self.classes.returnPressed.connect(self.start)
        self.place_label = QtWidgets.QLabel()
        self.place_label.setWordWrap(True)
        tint(self.place_label, NOTE)
        self.folder.textChanged.connect(self._show_place)
        self.place.currentIndexChanged.connect(self._show_place)
        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Folder:"), 0, 0)
        form.addWidget(self.folder, 0, 1, 1, 3)
        form.addWidget(choose, 0, 4)
        form.addWidget(QtWidgets.QLabel("Classes:"), 1, 0)
        form.addWidget(self.classes, 1, 1)
        form.addWidget(self.kind, 1, 2)
        form.addWidget(self.order, 1, 3)
        form.addWidget(self.place, 2, 1, 1, 2)
        form.addWidget(self.start_button, 1, 4)
        form.addWidget(self.place_label, 2, 3, 1, 2)

        self.viewer = ImageViewer()
        self.viewer.placeholder.setText("Choose a folder and the classes, then Start: one film at a time, "
                                        "keys 1-9 to label, S skip, U undo, B back")
        self.film_label = QtWidgets.QLabel("")
        self.film_label.setWordWrap(True)
        # room for the name line and one caution line: the answer buttons stay where the hand is (a GUI walk saw
        # them jump 27 px down on a film with a caution)
        self.film_label.setMinimumHeight(2 * self.film_label.fontMetrics().lineSpacing() + 6)
        self.film_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.suggestion = QtWidgets.QLabel("")
        self.suggestion.setToolTip("The model's suggestion: read it, then press the key of YOUR answer. Nothing is "
                                   "pre-selected.")
        self.buttons_row = QtWidgets.QHBoxLayout()
        self.class_buttons: list[QtWidgets.QPushButton] = []
        self.confirm = QtWidgets.QPushButton("Enter  confirm")
        self.confirm.clicked.connect(self._confirm_findings)
        self.skip_button = QtWidgets.QPushButton("S  skip")
        self.skip_button.clicked.connect(self.skip)
        self.undo_button = QtWidgets.QPushButton("U  undo")
        self.undo_button.clicked.connect(self.undo)
        self.back_button = QtWidgets.QPushButton("B  back")
        self.back_button.clicked.connect(self.back)
        actions = QtWidgets.QHBoxLayout()
        for b in (self.confirm, self.skip_button, self.undo_button, self.back_button):
            actions.addWidget(b)
        self.confirm.setVisible(False)
        self.counts = QtWidgets.QLabel("")
        self.counts.setWordWrap(True)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.curve = LearningCurve()
        self.curve_note = QtWidgets.QLabel("")
        self.curve_note.setWordWrap(True)
        self.curve_note.setStyleSheet("color: #f0b429;")
        self.make_button = QtWidgets.QPushButton("&Make classifier")  # Alt+M: the labelling ends at the keyboard too
        self.make_button.setToolTip("Alt+M: a calibrated classifier bundle from the labels so far (as the Training "
                                    "tab's probe writes one), listed and selected in the model picker. It needs films "
                                    f"of at least {MIN_PATIENTS_FOR_CLASSIFIER} patients of each class for training and"
                                    f" {MIN_PATIENTS_FOR_CLASSIFIER} for validation")
        self.make_button.clicked.connect(self.make_classifier)
        self.tune_button = QtWidgets.QPushButton("Tune the tower from these labels…")
        self.tune_button.setToolTip("Sets up a partial (or full) fine-tune of this label CSV in the Training tab, "
                                    "for you to review and start")
        self.tune_button.clicked.connect(self._request_finetune)
        # the same fine-tune from a terminal: one line to copy (wrapped, a label broke the path at a slash)
        self.finetune_hint = QtWidgets.QLineEdit()
        self.finetune_hint.setReadOnly(True)
        self.finetune_hint.setPlaceholderText("the same fine-tune from a terminal appears here")
        self.finetune_hint.setToolTip("The same fine-tune from a terminal: select and copy")
        tint(self.finetune_hint, NOTE)
        self._set_labelling(False)

        side = QtWidgets.QVBoxLayout()
        side.addWidget(self.film_label)
        side.addWidget(self.suggestion)
        side.addLayout(self.buttons_row)
        side.addLayout(actions)
        side.addWidget(self.counts)
        side.addWidget(self.curve, 1)
        side.addWidget(self.curve_note)
        make_row = QtWidgets.QHBoxLayout()
        make_row.addWidget(self.make_button)
        make_row.addWidget(self.tune_button)
        side.addLayout(make_row)
        terminal = QtWidgets.QLabel("Or from a terminal:")
        tint(terminal, NOTE)
        side.addWidget(terminal)
        side.addWidget(self.finetune_hint)
        side_widget = QtWidgets.QWidget()
        side_widget.setLayout(side)
        split = QtWidgets.QSplitter()
        split.addWidget(self.viewer)
        split.addWidget(side_widget)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(2, 2, 2, 2)
        column.addLayout(form)
        column.addWidget(self.status)  # under the settings: a refusal (e.g. a CSV changed by hand) is read at once
        column.addWidget(split, 1)
        self._show_place()

    def _keys(self) -> None:
        """The label keys (`keys.LabelKeys`: before the window's shortcuts) and Ctrl+Z."""
        k = QtCore.Qt.Key
        bindings: dict[int, Callable[[], None]] = {int(k.Key_1) + i: (lambda n=i + 1: self.press(n)) for i in range(9)}
        bindings.update({int(k.Key_S): self.skip, int(k.Key_U): self.undo, int(k.Key_B): self.back,
                         int(k.Key_Return): self._confirm_findings, int(k.Key_Enter): self._confirm_findings})
        self.label_keys = LabelKeys(self, bindings)
        undo = QtGui.QShortcut(QtGui.QKeySequence("Ctrl+Z"), self, self.undo)
        undo.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # --- the form, as left last time ------------------------------------------------------------------------------
    def form_state(self) -> dict:
        """Folder, classes, kind, order and place, for the next start (nothing starts by itself then)."""
        return {"folder": self.folder.text(), "classes": self.classes.text(), "kind": self.kind.currentIndex(),
                "order": self.order.currentData(), "place": self.place.currentData()}

    def restore_form(self, state: object) -> None:
        """The form as `form_state` left it; what is missing or unknown keeps its default."""
        if not isinstance(state, dict):
            return
        for key, edit in (("folder", self.folder), ("classes", self.classes)):
            if isinstance(state.get(key), str) and state[key].strip():
                edit.setText(state[key])
        if isinstance(state.get("kind"), int) and 0 <= state["kind"] < self.kind.count():
            self.kind.setCurrentIndex(state["kind"])
        for key, box in (("order", self.order), ("place", self.place)):
            index = box.findData(state.get(key))
            if index >= 0:
                box.setCurrentIndex(index)

    # --- the labelling tab takes the window's width while it is in front (WideWhileShown) ---------------------
    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        self.setFocus()

    # --- starting ----------------------------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of films to label", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _show_place(self) -> None:
        text = self.folder.text().strip()
        if not text:
            self.place_label.setText("")
            return
        try:
            self.place_label.setText(f"Labels: {label_place(text, self.place.currentData()) / 'labels.csv'}")
        except (MedflipError, OSError):
            self.place_label.setText("")

    def class_names(self) -> list[str]:
        return [c.strip() for c in self.classes.text().split(",") if c.strip()]

    def start(self) -> None:
        """Open (or resume) the job for the folder; its films are embedded in a worker."""
        multi = self.kind.currentIndex() == 1
        engine = self._engine()
        if engine is not None and not getattr(engine, "has_text", False):
            engine = None
        try:
            job = LabellingJob(Path(self.folder.text().strip() or "."), self.class_names(), multi_label=multi,
                               where=self.place.currentData(), order=self.order.currentData(), engine=engine)
        except MedflipError as exc:
            self._say(str(exc), error=True)
            return
        self.job = job
        self.films_read.clear()
        self._shown = None
        self._make_buttons()
        self._set_labelling(False)
        self._say(f"Reading {len(job.films)} films (embedded once, then cached)… {job.summary()}")
        self._shown = None
        self.viewer.set_radiograph(None)
        self.viewer.placeholder.setText(f"Reading the {len(job.films)} films of {job.folder.name}: the first is shown "
                                        "when they are read")
        self.tasks.run(Task(job.prepare, with_progress=True, stoppable=True), self._prepared, self._failed,
                       on_progress=lambda d, t: self.status.setText(f"Reading the films: {d} of {t}…"))

    def _prepared(self, _result: object) -> None:
        job = self.job
        if job is None:
            return
        self._set_labelling(True)
        self.resolved.emit()
        refit_process.start()  # the refits' worker process imports while the first answers are given
        flagged = job.flagged()
        note = ""
        if flagged:
            note = f" {len(flagged)} film(s) flagged and not offered (hover here)."
            self.status.setToolTip("\n".join(f"{f.name}: {'; '.join(f.flags)}" for f in flagged[:40]))
        self._say(f"Labels written to {job.place / 'labels.csv'} at every answer.{note}")
        self.finetune_hint.setText("medflip finetune --images "
                                   f"\"{job.place / 'labels.csv'}\" --image-root \"{job.folder}\" --mode partial")
        self.finetune_hint.setCursorPosition(0)  # the command's start in sight, the rest scrolls
        self._show(job.next())
        self._refit_if_due()
        self.setFocus()

    def _failed(self, message: str) -> None:
        self._say(message, error=True)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff6b6b;" if error else "")
        if error:
            self.message.emit(text)

    def _make_buttons(self) -> None:
        for b in self.class_buttons:
            self.buttons_row.removeWidget(b)
            b.deleteLater()
        self.class_buttons = []
        multi = self.job.multi_label if self.job else False
        for n, name in enumerate((self.job.classes if self.job else [])[:9], start=1):
            b = QtWidgets.QPushButton(f"{n}  {name}")
            b.setCheckable(multi)
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # no button holds the focus: Enter never "accepts" one
            b.clicked.connect(lambda _=False, n=n: self.press(n, from_button=True))
            self.buttons_row.addWidget(b)
            self.class_buttons.append(b)
        self.confirm.setVisible(multi)

    def _set_labelling(self, on: bool) -> None:
        for b in (*self.class_buttons, self.skip_button, self.undo_button, self.back_button, self.confirm,
                  self.make_button, self.tune_button):
            b.setEnabled(on)

    # --- labelling -----------------------------------------------------------------------------------------------
    def press(self, n: int, from_button: bool = False) -> None:
        job = self.job
        if job is None or not job.prepared or not self.film_on_screen() or n > len(self.class_buttons):
            return
        if job.multi_label:
            if not from_button:
                self.class_buttons[n - 1].toggle()
            return
        self._act(lambda: job.answer([job.classes[n - 1]]))

    def _confirm_findings(self) -> None:
        job = self.job
        if job is None or not job.multi_label or not self.film_on_screen():
            return
        chosen = [job.classes[i] for i, b in enumerate(self.class_buttons) if b.isChecked()]
        self._act(lambda: job.answer(chosen))

    def skip(self) -> None:  # also while a film is being read, or cannot be: skipping it gives it no label
        if self.job is not None and self.job.prepared:
            self._act(self.job.skip)

    def undo(self) -> None:
        if self.job is not None and self.job.prepared:
            self._act(self.job.undo)

    def back(self) -> None:
        if self.job is not None and self.job.prepared:
            self._act(self.job.back)

    def _act(self, step: Callable[[], object]) -> None:
        try:
            film = step()
        except MedflipError as exc:  # e.g. the disk is full: the answer was not recorded, the film stays
            self._say(str(exc), error=True)
            return
        self._show(film)
        self._refit_if_due()

    def _show(self, film) -> None:
        job = self.job
        for b in self.class_buttons:
            b.setChecked(False)
            b.setEnabled(film is not None)  # nothing left to answer: the answer buttons say so (a GUI walk)
        if job is None:
            return
        self.counts.setText(job.summary())
        if film is None:
            self.film_label.setText("Every offered film is labelled or skipped. Make the classifier, or Undo / "
                                    "Back to change an answer.")
            self.suggestion.setText("")
            self._shown = None
            self.viewer.set_radiograph(None)
            self.viewer.placeholder.setText("Every offered film is labelled or skipped.")
            return
        answer = job.answers.get(film.name)
        given = f" — your answer: {', '.join(answer.labels) or 'No Finding'}" if answer else ""
        caution = "".join(f"<br><span style='color:#ffb347'>⚠ {c}</span>" for c in film.cautions)
        self.film_label.setText(f"<b>{film.name}</b> · patient {film.patient} · chosen by "
                                f"{job.current_chosen_by or '—'}{given}{caution}")
        self._show_suggestion()
        self._display(film)
        self._read_ahead()

    # --- films read off this thread, the likely next one ahead ----------------------------------------------------
    def _display(self, film) -> None:
        """`film`'s pixels in the viewer: at once when it was read ahead; otherwise the viewer says it is being read
        (never the previous film's picture under this film's name) and shows it when its read lands."""
        image = self.films_read.get(film.path)
        self._shown = None
        if image is not None:
            self._arrived(film.path, image)
            return
        self.viewer.set_radiograph(None)
        self.viewer.placeholder.setText(f"Reading {film.name}…")
        self.films_read.read(film.path)

    def _read_ahead(self) -> None:
        """Read the film likely to come next (after each step, and after a refit: the new head may choose another)."""
        ahead = self.job.peek() if self.job is not None and self.job.prepared and self.job.film is not None else None
        self.films_read.read_ahead(ahead.path if ahead is not None else None)

    def _arrived(self, path: Path, image) -> None:
        job = self.job
        if job is not None and job.film is not None and job.film.path == path and self._shown != path:
            self.viewer.set_radiograph(image)
            self._shown = path

    def _read_failed(self, path: Path, message: str) -> None:
        job = self.job
        if job is not None and job.film is not None and job.film.path == path:
            self.viewer.placeholder.setText(f"Cannot read {job.film.name}: skip it (S)")
            self._failed(message)

    def film_on_screen(self) -> bool:
        """The film to answer is the one in the viewer: answer keys do nothing before (no label for an unseen film,
        e.g. a key pressed twice while the next film is still being read)."""
        return self.job is not None and self.job.film is not None and self._shown == self.job.film.path

    def _show_suggestion(self) -> None:
        job = self.job
        if job is None or job.film is None:  # every film answered: a later refit has nothing to suggest for
            self.suggestion.setText("")
            return
        probs = job.suggestion()
        if not probs:
            self.suggestion.setText("Model: no suggestion yet")
            return
        if job.multi_label:
            text = ", ".join(f"{c} {p:.0%}" for c, p in probs.items())
        else:
            top = max(probs, key=probs.get)
            text = f"{top} {probs[top]:.0%}"
        self.suggestion.setText(f"Model ({job.head_kind()}) suggests: {text}  — your key decides")

    # --- learning --------------------------------------------------------------------------------------------------
    def _refit_if_due(self) -> None:
        job = self.job
        if job is None or self._refitting or not job.refit_due():
            return
        self._refitting = True
        snap = job.snapshot()
        self.tasks.run(Task(refit_process.refit_in_process, snap), lambda result, j=job: self._refitted(j, result),
                       self._refit_failed)

    def _refitted(self, job: LabellingJob, result: tuple) -> None:
        self._refitting = False
        if job is not self.job:
            return
        self.refits_done += 1
        job.set_head(*result)
        self.curve.show_points(job.curve)
        last = job.curve[-1] if job.curve else None
        if last is not None:
            self.curve_note.setText(f"{last.what}: {last.auc:.3f} (95 % CI {last.ci95[0]:.3f}–{last.ci95[1]:.3f}) on "
                                    f"{last.val_films} validation films of {last.val_patients} patients; zero-shot "
                                    f"{last.zero_shot_auc:.3f}. {last.note}")
        else:
            self.curve_note.setText("No validation AUC yet: the validation films (random picks, a quarter of the "
                                    "patients) do not yet hold every class.")
        self._show_suggestion()
        self._read_ahead()  # the new head may choose another film next
        self._refit_if_due()

    def _refit_failed(self, message: str) -> None:
        self._refitting = False
        self._say(message, error=True)

    # --- the classifier ----------------------------------------------------------------------------------------------
    def make_classifier(self, out: str | None = None) -> None:
        job = self.job
        if job is None or not job.prepared:
            return
        from datetime import datetime

        from medflip_core.bundles.model_store import user_models_dir

        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        target = out or str(user_models_dir() / f"labelled-{job.folder.name}-{stamp}")
        try:
            request = job.classifier_request(target)
        except MedflipError as exc:
            self._say(str(exc), error=True)
            return
        self.make_button.setEnabled(False)
        self._say("Making the classifier…")
        self.tasks.run(Task(make_classifier, request), self._made, self._make_failed)

    def _request_finetune(self) -> None:
        if self.job is not None:
            self.finetune_requested.emit(str(self.job.place / "labels.csv"), str(self.job.folder))

    def _made(self, path) -> None:
        self.make_button.setEnabled(True)
        text = f"Classifier written to {path} and selected in the model picker."
        check = read_validation(path).get("exposure_check") or {}
        if check.get("flagged"):  # the shortcut check: said where the user is looking, whole in the tooltip
            text += f" ⚠ {check['headline']} Check where each class's films come from (hover for why)."
        self._say(text)
        self.status.setToolTip(check.get("message", "") if check.get("flagged") else "")
        if check.get("flagged"):
            self.status.setStyleSheet("color: #ffb347;")
        self.classifier_ready.emit(str(path))

    def _make_failed(self, message: str) -> None:
        self.make_button.setEnabled(True)
        self._say(message, error=True)
