"""Scores of the current image: zero-shot over an editable label list and prompt templates, or - when the
selected model is a classifier - its own classes as calibrated probabilities with the decision threshold marked;
bars, and a heat-map (patch-text similarity, or the classifier's class-activation map)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.panels.label_marks import OUTSIDE, label_marks, marks_legend, wrapped
from app.panels.threshold_bar import ThresholdBar
from app.panels.warning_lines import WarningLines
from app.scroll_page import scroll_page
from app.text_colours import CAUTION, NOTE, tint
from medflip_core.inference.zeroshot import (
    AUTOMATIC,
    EXCLUSIVE,
    INDEPENDENT,
    MODE_NAMES,
    LabelModeError,
    choose_label_mode,
)
from medflip_core.labeler.prompts import ModelPrompts, model_prompts, same_templates

LABEL_WIDTH = 150  # px; longer labels are elided (full text in the tooltip) so they never widen the window


class ZeroShotPanel(QtWidgets.QWidget):
    score_requested = QtCore.Signal(list, list)  # labels, templates
    classify_requested = QtCore.Signal()  # the selected classifier's own classes
    heatmap_requested = QtCore.Signal(str, float)  # label ("" for none), opacity 0..1

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.classifier_name = ""  # the selected model's name when it is a classifier
        self.use_classifier = QtWidgets.QRadioButton("Classifier")
        self.use_classifier.setToolTip("The fine-tuned model's own classes, calibrated on its validation patients")
        self.use_zero_shot = QtWidgets.QRadioButton("Zero-shot (labels)")
        self.use_zero_shot.setToolTip("Any labels you type, scored with the base model's text encoder")
        self.use_zero_shot.setChecked(True)
        self.use_classifier.toggled.connect(self._mode_changed)
        self.mode_row = QtWidgets.QWidget()
        mode = QtWidgets.QHBoxLayout(self.mode_row)
        mode.setContentsMargins(0, 0, 0, 0)
        mode.addWidget(QtWidgets.QLabel("<b>Scores</b>"))
        mode.addWidget(self.use_classifier)
        mode.addWidget(self.use_zero_shot)
        mode.addStretch(1)
        self.mode_row.setVisible(False)
        self.labels_edit = QtWidgets.QPlainTextEdit()
        self._model_labels: list[str] = []  # the loaded model's own labels (Model's labels puts them back)
        self.labels_edit.setPlaceholderText("One label per line (or comma-separated), e.g.\nNo Finding\nPneumonia\n"
                                            "Pleural Effusion")
        self.labels_edit.setMaximumHeight(120)
        self.label_mode_box = QtWidgets.QComboBox()  # how probabilities are formed: always visible, always named
        self.label_mode_box.addItem("Automatic", AUTOMATIC)
        self.label_mode_box.addItem(MODE_NAMES[INDEPENDENT].capitalize(), INDEPENDENT)
        self.label_mode_box.addItem(MODE_NAMES[EXCLUSIVE].capitalize(), EXCLUSIVE)
        for i, tip in enumerate(("Chosen from the labels: findings of the model's label space are scored each on "
                                 "its own, other labels as classes of which an image has one",
                                 "Each label against its negative prompt (“no pneumothorax”): one probability per "
                                 "label, the bars do not sum to 100 %",
                                 "A softmax over the labels: they sum to 100 %; needs two labels or more")):
            self.label_mode_box.setItemData(i, tip, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.label_mode_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.label_mode_box.setMinimumContentsLength(24)
        self.label_mode_box.currentIndexChanged.connect(self._label_mode_changed)
        self.mode_note = QtWidgets.QLabel()
        self.mode_note.setWordWrap(True)
        # two lines whatever it says: the note changes as labels are typed, and the Score button below it moved
        # under a GUI walk's click
        self.mode_note.setMinimumHeight(2 * self.mode_note.fontMetrics().lineSpacing())
        self.mode_note.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        self.labels_edit.textChanged.connect(self._update_mode_note)
        self.labels_edit.textChanged.connect(self._labels_edited)
        # the model's own prompts, shown in the box when they are templates (a GUI walk: the box listed three generic
        # templates while the model used its own one and the findings' phrasings); the model says which (its
        # manifest), until then the default prompt set
        self._model_prompts = model_prompts({})
        self.templates_edit = QtWidgets.QPlainTextEdit("\n".join(self._model_prompts.templates))
        self.templates_edit.setPlaceholderText("Templates of your own, one per line, {label} for the label: e.g. "
                                               "an x-ray with {label}.")
        self.templates_edit.setToolTip("{label} is replaced by each label; known labels also use report-style "
                                       "phrasings from the prompt set")
        self.templates_edit.setMaximumHeight(80)
        score = QtWidgets.QPushButton("Score image")
        score.setDefault(True)
        score.clicked.connect(self.request)
        self.results = QtWidgets.QWidget()
        self.results_layout = QtWidgets.QFormLayout(self.results)
        self.heat_label = QtWidgets.QComboBox()
        self.heat_label.addItem("(no heat-map)")
        self.heat_label.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.heat_label.setMinimumContentsLength(12)
        self.heat_label.currentIndexChanged.connect(self.refresh_heat_map)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.valueChanged.connect(self.refresh_heat_map)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        tint(self.status, NOTE)
        heat = QtWidgets.QHBoxLayout()
        heat.addWidget(QtWidgets.QLabel("Heat-map"))
        heat.addWidget(self.heat_label, 1)
        heat.addWidget(QtWidgets.QLabel("opacity"))
        heat.addWidget(self.opacity)
        self.prompts = QtWidgets.QWidget()
        prompts = QtWidgets.QVBoxLayout(self.prompts)
        prompts.setContentsMargins(0, 0, 0, 0)
        labels_row = QtWidgets.QHBoxLayout()
        labels_row.addWidget(QtWidgets.QLabel("<b>Labels</b> (type any)"), 1)
        self.model_labels_button = QtWidgets.QPushButton("Model's labels")
        self.model_labels_button.setToolTip("Back to the model's own labels (typed labels are kept between "
                                            "sessions until you change them)")
        self.model_labels_button.clicked.connect(self.use_model_labels)
        self.model_labels_button.setEnabled(False)
        labels_row.addWidget(self.model_labels_button)
        prompts.addLayout(labels_row)
        prompts.addWidget(self.labels_edit)
        probability_row = QtWidgets.QHBoxLayout()
        probability_row.addWidget(QtWidgets.QLabel("<b>Probabilities</b>"))
        probability_row.addWidget(self.label_mode_box, 1)
        prompts.addLayout(probability_row)
        prompts.addWidget(self.mode_note)
        # the templates fold away (a GUI walk: with them open, the bars began below the fold at 1280x800); the row
        # says whether the model's own prompts or the user's apply, and opens itself when they are the user's
        self.templates_toggle = QtWidgets.QToolButton()
        self.templates_toggle.setText("Prompt templates")
        self.templates_toggle.setCheckable(True)
        self.templates_toggle.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.templates_toggle.setArrowType(QtCore.Qt.ArrowType.RightArrow)
        self.templates_toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.templates_toggle.setToolTip("Show or hide the prompt templates ({label} is replaced by each label)")
        self.templates_toggle.toggled.connect(self._show_templates)
        self.templates_summary = QtWidgets.QLabel()
        tint(self.templates_summary, NOTE)
        templates_row = QtWidgets.QHBoxLayout()
        templates_row.addWidget(self.templates_toggle)
        templates_row.addWidget(self.templates_summary, 1)
        self.reset_templates = QtWidgets.QPushButton("Model's prompts")
        self.reset_templates.setToolTip("Back to the model's own prompts (chosen with its decision rule)")
        self.reset_templates.clicked.connect(lambda: self.templates_edit.setPlainText("\n".join(self._model_lines())))
        templates_row.addWidget(self.reset_templates)
        prompts.addLayout(templates_row)
        self.templates_box = QtWidgets.QWidget()
        box = QtWidgets.QVBoxLayout(self.templates_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.templates_edit)
        self.prompt_note = QtWidgets.QLabel()  # what the model's own prompts are: read-only, framed when the box
        self.prompt_note.setWordWrap(True)  # cannot hold them
        tint(self.prompt_note, NOTE)
        box.addWidget(self.prompt_note)
        self.templates_box.setVisible(False)
        prompts.addWidget(self.templates_box)
        self.templates_edit.textChanged.connect(self._templates_edited)
        self.score_button = score
        # One scrolling page: many bars, the colour scale, a long status or error never raise the window's
        # minimum height, nor squash the prompt hint; the page scrolls instead (1280x720 fits).
        content = QtWidgets.QWidget()
        self.page = scroll_page(self, content, 200)
        layout = QtWidgets.QVBoxLayout(content)
        layout.addWidget(self.mode_row)
        layout.addWidget(self.prompts)
        layout.addWidget(score)
        # the heat-map choice under the button: below the bars it fell under the fold of the window a 1280x800
        # screen opens (1272x760) on a film with warnings (a GUI walk)
        layout.addLayout(heat)
        # what the bars are, and any warning about this image (not a chest film, inverted, contradictions), sits
        # between the button and the bars: read before the numbers, never below the fold of a 1280x800 window
        layout.addWidget(self.status)
        self.warnings = WarningLines()  # about the image: one line each
        layout.addWidget(self.warnings)
        layout.addWidget(self.results)
        layout.addStretch(1)
        self.bars: dict[str, QtWidgets.QProgressBar] = {}
        self._answered = False  # zero-shot bars or an error from scoring are on screen
        self._scored_templates: list[str] | None = None
        self.set_model_prompts(self._model_prompts)
        self._update_mode_note()

    # --- classifier or zero-shot ------------------------------------------------------------------------
    def set_classifier(self, name: str, zero_shot: bool = True,
                       probability_words: str = "calibrated probabilities") -> None:
        """The selected model is a classifier called `name` ('' when it is not): offer its own classes, selected,
        with zero-shot one click away when the bundle kept a text encoder that matches its image tower."""
        self.classifier_name = name
        self.mode_row.setVisible(bool(name))
        self.use_classifier.setToolTip(f"The classes of {name}: {probability_words}" if name else "")
        self.use_classifier.setEnabled(bool(name))
        self.use_zero_shot.setEnabled(zero_shot or not name)
        self.use_zero_shot.setToolTip("Any labels you type, scored with the base model's text encoder" if zero_shot
                                      else "Not with this classifier: its image tower was fine-tuned, so it no longer "
                                           "matches a text encoder. Choose its base model for zero-shot.")
        (self.use_classifier if name else self.use_zero_shot).setChecked(True)
        self._mode_changed()

    def classifier_mode(self) -> bool:
        return bool(self.classifier_name) and self.use_classifier.isChecked()

    def _mode_changed(self) -> None:
        self.prompts.setVisible(not self.classifier_mode())
        self.clear_scores()
        self.status.setText("")  # the other mode's explanation does not describe what comes next
        self._answered = False
        self.heat_label.blockSignals(True)
        self.heat_label.clear()
        self.heat_label.addItem("(no heat-map)")
        self.heat_label.blockSignals(False)

    def set_model_prompts(self, prompts: ModelPrompts) -> None:
        """The loaded model's own prompts (medflip_core.labeler.prompts.model_prompts): the box shows them when they
        are templates, else it stays empty for templates of one's own and a framed read-only line says what they
        are. Templates the user typed for the model before stay theirs."""
        unedited = not self._own_templates()
        self._model_prompts = prompts
        if unedited:
            self.templates_edit.setPlainText("\n".join(self._model_lines()))
        if prompts.as_templates:
            self.prompt_note.setText("Left as shown, these are the model's own prompts, with its decision rule; its "
                                     "findings also get their report-style phrasings. Edited, the lines are your own: "
                                     "used as typed (findings keep their phrasings), with the plain rule.")
            self.prompt_note.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        else:
            self.prompt_note.setText(f"The model's own prompts apply while the box is empty (read-only: they are not "
                                     f"templates): {prompts.name}, {prompts.description}. Templates typed in the "
                                     "box replace them, with the plain decision rule.")
            self.prompt_note.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self._templates_edited()

    def _model_lines(self) -> list[str]:
        """What the box holds for the model's own prompts: their templates, or nothing when they are not templates."""
        return list(self._model_prompts.templates) if self._model_prompts.as_templates else []

    def _own_templates(self) -> bool:
        return not same_templates(self.templates(), self._model_lines())

    def _show_templates(self, shown: bool) -> None:
        self.templates_box.setVisible(shown)
        self.templates_toggle.setArrowType(QtCore.Qt.ArrowType.DownArrow if shown else QtCore.Qt.ArrowType.RightArrow)

    def _templates_edited(self) -> None:
        """The folded row names which prompts apply; templates of the user's own open the section, so what
        scores the bars is never hidden."""
        own = self._own_templates()
        self.templates_summary.setText(f"your own ({len(self.templates())}), used as typed" if own else
                                       "the model's own prompts")
        self.reset_templates.setVisible(own)
        if self.bars and not self.classifier_mode() and self.templates() != self._scored_templates:
            self._outdated("The prompt templates changed: Score image for the labels' probabilities.")
        if own and not self.templates_toggle.isChecked():
            self.templates_toggle.setChecked(True)

    # --- how the labels become probabilities ----------------------------------------------------------
    def label_mode(self) -> str:
        """"automatic", "independent" or "exclusive": the user's choice, kept until they pick Automatic again."""
        return str(self.label_mode_box.currentData())

    def set_label_mode(self, mode: str) -> bool:
        """Choose "automatic", "independent" or "exclusive" (e.g. the choice saved last time); False if unknown."""
        index = self.label_mode_box.findData(mode)
        if index < 0:
            return False
        self.label_mode_box.setCurrentIndex(index)
        return True

    def _label_mode_changed(self) -> None:
        self._update_mode_note()
        if self._answered and not self.classifier_mode():  # what is on screen came from the other mode: redo it
            self.request()

    def _update_mode_note(self) -> None:
        """Say, as the labels are typed, which mode applies and why (or why the chosen one cannot)."""
        labels, requested = self.labels(), self.label_mode()
        automatic = choose_label_mode(labels) if labels else None
        self.label_mode_box.setItemText(0, f"Automatic ({automatic.name})" if automatic else "Automatic")
        tint(self.mode_note, NOTE)
        self.mode_note.setToolTip("")
        if not labels:
            self.mode_note.setText("Type labels: findings of the model's label space are scored each on its own, "
                                   "other labels as classes of which an image has one.")
            return
        try:
            mode = choose_label_mode(labels, requested)
        except LabelModeError as exc:  # the full sentence comes with Score image; here a shorter form
            tint(self.mode_note, CAUTION)
            self.mode_note.setText(f"⚠ {exc.short}")
            self.mode_note.setToolTip(str(exc))
            return
        if mode.automatic:
            self.mode_note.setText(mode.reason[:1].upper() + mode.reason[1:] + ".")
        elif mode.kind == automatic.kind:
            self.mode_note.setText("Chosen by you (Automatic would choose the same for these labels).")
        else:
            self.mode_note.setText(f"Chosen by you; Automatic would choose {automatic.name} for these labels.")
        self.mode_note.setToolTip(f"Automatic would use {automatic.name}: {automatic.reason}.")

    def set_default_labels(self, labels: list[str]) -> None:
        self._model_labels = list(labels)
        self.model_labels_button.setEnabled(bool(labels))
        if not self.labels_edit.toPlainText().strip():
            self.labels_edit.setPlainText("\n".join(labels))

    def use_model_labels(self) -> None:
        """The loaded model's own labels again (a GUI walk: typed labels stuck across restarts with no way back)."""
        if self._model_labels:
            self.labels_edit.setPlainText("\n".join(self._model_labels))

    def labels(self) -> list[str]:
        """One label per line, or several on a line separated by commas (as the other tabs take them)."""
        return [x.strip() for line in self.labels_edit.toPlainText().splitlines() for x in line.split(",")
                if x.strip()]

    def templates(self) -> list[str]:
        """Every non-empty template line (a line without {label} is reported, not silently dropped)."""
        return [x.strip() for x in self.templates_edit.toPlainText().splitlines() if x.strip()]

    def request(self) -> None:
        if self.classifier_mode():
            self.classify_requested.emit()
        else:
            self._scored_templates = self.templates()  # the bars to come answer these (an unchanged box keeps them)
            self.score_requested.emit(self.labels(), self.templates())

    def _labels_edited(self) -> None:
        """Bars of labels that are no longer the ones typed go: they would read as the new labels' scores."""
        if self.bars and not self.classifier_mode() and set(self.bars) != set(self.labels()):
            self._outdated("The labels changed: Score image for their probabilities.", heat_map_too=True)

    def _outdated(self, why: str, heat_map_too: bool = False) -> None:
        """The bars on screen no longer answer what is typed: they go, and `why` says what to do."""
        self.clear_scores()
        if heat_map_too:  # a label that may be gone
            self.heat_label.setCurrentIndex(0)
        tint(self.status, NOTE)
        self.status.setText(why)

    def clear_scores(self) -> None:
        while self.results_layout.rowCount():
            self.results_layout.removeRow(0)
        self.bars.clear()
        self.warnings.set_warnings([])  # the image's warnings went with the scores they came with

    def image_changed(self, name: str) -> None:
        """Another image is on screen: the previous one's bars go at once (a GUI walk saw an NIH film's
        Pneumonia 94.9 % beside the next film for seconds while it was read and scored)."""
        if not self.bars:
            return
        self.clear_scores()  # the heat-map's label stays chosen: the next film's map follows its scores (a walk
        # compared one label's map across films and had to choose it again for each)
        tint(self.status, NOTE)
        self.status.setText(f"Scoring {name}…")

    def show_error(self, message: str) -> None:
        """Input the scores cannot be computed from: old bars go, the reason stays until a valid scoring."""
        self.clear_scores()
        self.heat_label.setCurrentIndex(0)  # no heat-map for scores that are gone
        tint(self.status, CAUTION)
        self.status.setText(f"⚠ {message}")
        self._answered = not self.classifier_mode()

    def show_scores(self, scores: dict[str, float], model_name: str, warnings: list[str] | None = None,
                    explanation: str = "", uncalibrated: list[str] | None = None,
                    unvalidated: dict[str, str] | None = None, alike: dict[str, str] | None = None,
                    outside_note: str = "", prompts: dict[str, list[str]] | None = None) -> None:
        """Zero-shot bars; `explanation` says what they are (exclusive classes or independent findings); the
        `uncalibrated` labels (outside the model's label space) are marked † beside their bars and `outside_note`
        says why in a line of its own, the `unvalidated` ones (of the label space, with no validation figure above
        chance: label -> why) with an asterisk, and the `alike` ones (whose score follows how abnormal the film
        looks: label -> why) with ∥. One line says what the marks in use mean (a GUI walk found six lines of grey
        text above the bars, which pushed them below the fold); each name's tooltip has the whole reason, each
        bar's the `prompts` (label -> texts) averaged into it (a walk: the phrasings were named, never shown)."""
        marks = self._show_bars(scores, {}, uncalibrated or [], unvalidated or {}, alike or {})
        for label, texts in (prompts or {}).items():
            if label in self.bars:
                self.bars[label].setToolTip(wrapped(f"{label}: the mean of {len(texts)} prompt(s): "
                                                    + "; ".join(f"“{t}”" for t in texts)))
        self._answered = True
        what = explanation or "probabilities over the labels above"
        if outside_note:  # † has its own line: said once
            marks.discard(OUTSIDE)
        legend = marks_legend(marks)
        outside = f"<br>{OUTSIDE} {outside_note}" if outside_note else ""
        self._say(f"Zero-shot probabilities — {what}; model {model_name}.{outside}"
                  + (f"<br>{legend}" if legend else ""), warnings)

    def show_prediction(self, probabilities: dict[str, float], thresholds: dict[str, float], multi_label: bool,
                        model_name: str, warnings: list[str] | None = None, decisions: dict[str, bool] | None = None,
                        rule: str = "", probability_words: str = "calibrated probabilities") -> None:
        """The classifier's probabilities, each bar marked where its class's decision changes, and the decision
        (computed by the core's one rule, never here)."""
        self._show_bars(probabilities, thresholds)
        decided = [c for c, d in (decisions or {}).items() if d]
        kind = ("each class on its own (they do not sum to 100 %)" if multi_label
                else "one class per image (they sum to 100 %)")
        marks = " The white mark is each class's decision threshold (where its decision changes)." if thresholds else ""
        self._say(f"Classifier {model_name}: {probability_words}, {kind}.{marks} {rule} Decided: "
                  f"<b>{', '.join(decided) or 'none'}</b>. Heat-map: the class's activation through the head.",
                  warnings)

    def _show_bars(self, scores: dict[str, float], thresholds: dict[str, float],
                   uncalibrated: list[str] | None = None, unvalidated: dict[str, str] | None = None,
                   alike: dict[str, str] | None = None) -> set[str]:
        """The bars, each name with its marks; returns the marks shown (for the legend)."""
        self.clear_scores()
        marks: set[str] = set()
        tint(self.status, NOTE)
        metrics = self.fontMetrics()
        outside = set(uncalibrated or [])
        # the model's own labels first; a label outside them is a score, not a probability (a GUI walk read
        # "COVID-19 61.0 %" sorted in among the real labels, under a warning that it is no probability), in per cent
        # as every bar is (another walk saw "score 0.20" among shares that summed to 100 % with it)
        for label, p in sorted(scores.items(), key=lambda kv: (kv[0] in outside, -kv[1])):
            bar = ThresholdBar(thresholds.get(label))
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{'score ' if label in outside else ''}{p * 100:.1f} %")
            if label in thresholds:
                bar.setToolTip(f"{label}: {p * 100:.1f} %, threshold {thresholds[label] * 100:.1f} %")
            suffix, tip = label_marks(label, label in outside, (unvalidated or {}).get(label),
                                      (alike or {}).get(label))
            shown = metrics.elidedText(label, QtCore.Qt.TextElideMode.ElideRight,
                                       LABEL_WIDTH - (metrics.horizontalAdvance(suffix) if suffix else 0))
            name = QtWidgets.QLabel(shown + suffix)
            name.setToolTip(wrapped(tip))
            marks |= set(suffix.split())
            if suffix:
                tint(name, CAUTION)
            self.results_layout.addRow(name, bar)
            self.bars[label] = bar
        current = self.heat_label.currentText()
        self.heat_label.blockSignals(True)
        self.heat_label.clear()
        self.heat_label.addItem("(no heat-map)")
        self.heat_label.addItems(list(scores))
        if current in scores:
            self.heat_label.setCurrentText(current)
        self.heat_label.blockSignals(False)
        return marks

    def _say(self, text: str, warnings: list[str] | None) -> None:
        self.status.setText(f"{text}<br>Research use only — not for diagnosis.")
        self.warnings.set_warnings(list(warnings or []))

    def refresh_heat_map(self) -> None:
        label = self.heat_label.currentText() if self.heat_label.currentIndex() > 0 else ""
        self.heatmap_requested.emit(label, self.opacity.value() / 100.0)

