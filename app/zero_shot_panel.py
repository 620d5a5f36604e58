"""Zero-shot label scores: an editable label list and prompt templates, bars, and a patch heat-map."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from medflip_core.heatmap import NORMALISATION, colour_map

LABEL_WIDTH = 150  # px; longer labels are elided (full text in the tooltip) so they never widen the window
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
        self.heat_label.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.heat_label.setMinimumContentsLength(12)
        self.heat_label.currentIndexChanged.connect(self.refresh_heat_map)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.valueChanged.connect(self.refresh_heat_map)
        self.scale = ColourScale()
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
        layout.addWidget(self.scale)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.bars: dict[str, QtWidgets.QProgressBar] = {}

    def set_default_labels(self, labels: list[str]) -> None:
        if not self.labels_edit.toPlainText().strip():
            self.labels_edit.setPlainText("\n".join(labels))

    def labels(self) -> list[str]:
        return [x.strip() for x in self.labels_edit.toPlainText().splitlines() if x.strip()]

    def templates(self) -> list[str]:
        """Every non-empty template line (a line without {label} is reported, not silently dropped)."""
        return [x.strip() for x in self.templates_edit.toPlainText().splitlines() if x.strip()]

    def request(self) -> None:
        self.score_requested.emit(self.labels(), self.templates())

    def clear_scores(self) -> None:
        while self.results_layout.rowCount():
            self.results_layout.removeRow(0)
        self.bars.clear()

    def show_error(self, message: str) -> None:
        """Input the scores cannot be computed from: old bars go, the reason stays until a valid scoring."""
        self.clear_scores()
        self.heat_label.setCurrentIndex(0)  # no heat-map for scores that are gone
        self.status.setStyleSheet("color: #e8793a;")
        self.status.setText(f"⚠ {message}")

    def show_scores(self, scores: dict[str, float], model_name: str, warnings: list[str] | None = None) -> None:
        self.clear_scores()
        self.status.setStyleSheet("color: #8a939b;")
        metrics = self.fontMetrics()
        for label, p in sorted(scores.items(), key=lambda kv: -kv[1]):
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{p * 100:.1f} %")
            name = QtWidgets.QLabel(metrics.elidedText(label, QtCore.Qt.TextElideMode.ElideRight, LABEL_WIDTH))
            name.setToolTip(label)
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
        caution = "".join(f"<br><span style='color:#e8793a'>⚠ {w}</span>" for w in warnings or [])
        self.status.setText(f"Zero-shot probabilities over the labels above (they sum to 100 %), model "
                            f"{model_name}. Research use only — not for diagnosis.{caution}")

    def refresh_heat_map(self) -> None:
        label = self.heat_label.currentText() if self.heat_label.currentIndex() > 0 else ""
        if not label:
            self.scale.setVisible(False)
        self.heatmap_requested.emit(label, self.opacity.value() / 100.0)

    def show_heat_range(self, low: float, high: float) -> None:
        self.scale.set_range(low, high)


class ColourScale(QtWidgets.QWidget):
    """The heat-map's colour bar with the cosine values at its ends and how colours are scaled."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QtWidgets.QLabel()
        self.bar.setFixedHeight(12)
        self.bar.setScaledContents(True)
        ramp = np.ascontiguousarray(np.repeat(colour_map(np.linspace(0, 1, 256))[None], 2, axis=0))
        image = QtGui.QImage(ramp.data, 256, 2, 256 * 3, QtGui.QImage.Format.Format_RGB888).copy()
        self.bar.setPixmap(QtGui.QPixmap.fromImage(image))
        self.low = QtWidgets.QLabel()
        self.high = QtWidgets.QLabel()
        self.note = QtWidgets.QLabel(f"Patch-text cosine; {NORMALISATION}.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #8a939b;")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.low)
        row.addWidget(self.bar, 1)
        row.addWidget(self.high)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note)
        self.setVisible(False)

    def set_range(self, low: float, high: float) -> None:
        self.low.setText(f"{low:.3f}")
        self.high.setText(f"{high:.3f}")
        self.setVisible(True)
