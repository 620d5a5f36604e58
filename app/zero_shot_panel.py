"""Zero-shot label scores: an editable label list and prompt templates, bars, and a patch heat-map."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

DEFAULT_TEMPLATES = ["{label}.", "a chest radiograph showing {label}.", "findings consistent with {label}."]


class ZeroShotPanel(QtWidgets.QWidget):
    score_requested = QtCore.Signal(list, list)  # labels, templates
    heatmap_requested = QtCore.Signal(str, float)  # label ("" for none), opacity 0..1

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels_edit = QtWidgets.QPlainTextEdit()
        self.labels_edit.setPlaceholderText("One label per line, e.g.\nNo Finding\nPneumonia\nPleural Effusion")
        self.labels_edit.setMaximumHeight(120)
        self.templates_edit = QtWidgets.QPlainTextEdit("\n".join(DEFAULT_TEMPLATES))
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
        self.heat_label.currentIndexChanged.connect(self._heat_changed)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.valueChanged.connect(self._heat_changed)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #8a939b;")
        heat = QtWidgets.QHBoxLayout()
        heat.addWidget(QtWidgets.QLabel("Heat-map"))
        heat.addWidget(self.heat_label, 1)
        heat.addWidget(QtWidgets.QLabel("opacity"))
        heat.addWidget(self.opacity)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("<b>Labels</b> (type any)"))
        layout.addWidget(self.labels_edit)
        layout.addWidget(QtWidgets.QLabel("<b>Prompt templates</b>"))
        layout.addWidget(self.templates_edit)
        layout.addWidget(score)
        layout.addWidget(self.results)
        layout.addLayout(heat)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.bars: dict[str, QtWidgets.QProgressBar] = {}

    def set_default_labels(self, labels: list[str]) -> None:
        if not self.labels_edit.toPlainText().strip():
            self.labels_edit.setPlainText("\n".join(labels))

    def labels(self) -> list[str]:
        return [x.strip() for x in self.labels_edit.toPlainText().splitlines() if x.strip()]

    def templates(self) -> list[str]:
        return [x.strip() for x in self.templates_edit.toPlainText().splitlines() if "{label}" in x]

    def request(self) -> None:
        self.score_requested.emit(self.labels(), self.templates())

    def show_scores(self, scores: dict[str, float], model_name: str, warnings: list[str] | None = None) -> None:
        while self.results_layout.rowCount():
            self.results_layout.removeRow(0)
        self.bars.clear()
        for label, p in sorted(scores.items(), key=lambda kv: -kv[1]):
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{p * 100:.1f} %")
            self.results_layout.addRow(label, bar)
            self.bars[label] = bar
        current = self.heat_label.currentText()
        self.heat_label.blockSignals(True)
        self.heat_label.clear()
        self.heat_label.addItem("(no heat-map)")
        self.heat_label.addItems(list(scores))
        if current in scores:
            self.heat_label.setCurrentText(current)
        self.heat_label.blockSignals(False)
        caution = "".join(f"<br><span style='color:#e8793a'>⚠ {w}</span>" for w in warnings or [])
        self.status.setText(f"Zero-shot probabilities over the labels above (they sum to 100 %), model "
                            f"{model_name}. Research use only — not for diagnosis.{caution}")

    def _heat_changed(self) -> None:
        label = self.heat_label.currentText() if self.heat_label.currentIndex() > 0 else ""
        self.heatmap_requested.emit(label, self.opacity.value() / 100.0)
