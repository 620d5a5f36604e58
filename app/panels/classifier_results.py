"""A classifier bundle's validation results: ROC curves per class (pyqtgraph), the confusion matrix, and the
figures with their patient-level CIs, read from the bundle's validation.json (written by the fine-tuning job)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.scroll_page import scroll_page
from medflip_core.finetune.classifier_bundle import VALIDATION_JSON
from medflip_core.finetune.validation import per_class_lines

COLOURS = ["#4fa3ff", "#ffb347", "#5fd38d", "#ff6b6b", "#c792ea", "#f0e68c", "#7fdbff", "#ff85c0"]


def read_validation(bundle: str | Path) -> dict[str, Any]:
    """The bundle's validation figures, or {} when it has none (e.g. a CLIP bundle)."""
    path = Path(bundle) / VALIDATION_JSON
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


class ClassifierResults(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.bundle = ""
        self.figures: dict[str, Any] = {}
        self.warning = ""  # the job's small-validation warning, shown first in the summary ("" when none)
        self.exposure = ""  # the exposure check's message when exposure alone separates a class ("" when not)
        self.summary = QtWidgets.QLabel("Fine-tune a classifier (or select one in the Model picker) to see its "
                                        "validation results here.")
        self.summary.setWordWrap(True)
        self.roc = pg.PlotWidget(title="validation ROC curves")
        self.roc.setLabel("bottom", "1 − specificity")
        self.roc.setLabel("left", "sensitivity")
        self.roc.setXRange(0, 1)
        self.roc.setYRange(0, 1)
        self.roc.setMinimumHeight(160)  # readable curves; the Training tab scrolls its form to make room
        self.roc.plotItem.showGrid(x=True, y=True, alpha=0.2)
        # a fixed view: the wheel scrolls the page (a GUI walk: one turn zoomed the curves to -10..12, no way back)
        self.roc.setMouseEnabled(x=False, y=False)
        self.roc.setMenuEnabled(False)
        self.roc.hideButtons()
        self.roc.viewport().installEventFilter(self)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.confusion = QtWidgets.QTableWidget(0, 0)
        self.confusion.setMinimumHeight(48)  # then as high as its rows (_fill_confusion)
        self.confusion.horizontalHeader().setStretchLastSection(True)
        self.confusion.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_title = QtWidgets.QLabel()
        self.confusion_title.setWordWrap(True)
        self.warning_label = QtWidgets.QLabel()  # the small-data warning: whole, wrapped, above the figures
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #ffb347; font-weight: bold;")
        self.warning_label.setVisible(False)
        # Everything in one scrolling page: on a small window the page scrolls; nothing is clipped, overlaps or
        # raises the window's minimum size (the summary, the curves and every row of the matrix keep their room).
        content = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.summary)
        layout.addWidget(self.roc, 1)
        layout.addWidget(self.confusion_title)
        layout.addWidget(self.confusion)
        self.page = scroll_page(self, content, 120)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        """The ROC plot's wheel turns go to the page's scroll bar."""
        if event.type() == QtCore.QEvent.Type.Wheel and watched is self.roc.viewport():
            QtWidgets.QApplication.sendEvent(self.page.verticalScrollBar(), event)
            return True
        return super().eventFilter(watched, event)

    def show_bundle(self, bundle: str | Path) -> bool:
        """Show a classifier bundle's validation figures; False when the folder has none."""
        figures = read_validation(bundle)
        if not figures.get("per_class"):
            return False
        self.bundle, self.figures = str(bundle), figures
        self._plot_roc(figures["per_class"])
        self._fill_confusion(figures.get("confusion", {}))
        lines = [f"<b>{Path(bundle).name}</b> — validation: {figures.get('images')} images of "
                 f"{figures.get('patients')} patients ({figures.get('data_set', 'validation split')}); "
                 f"95 % CIs resample patients."]
        note = figures.get("small_validation") or {}
        self.warning = note.get("headline") or note.get("message", "")
        # first, above the figures it qualifies, whole and wrapped; the job's full message as its tooltip
        self.warning_label.setText(f"⚠ {self.warning}" if self.warning else "")
        self.warning_label.setVisible(bool(self.warning))
        self.warning_label.setToolTip(note.get("message", ""))
        self.summary.setToolTip(note.get("message", ""))
        if figures.get("decision_rule"):
            lines.append(html.escape(figures["decision_rule"]))
        lines += [html.escape(line) for line in per_class_lines(figures["per_class"])]
        check = figures.get("exposure_check") or {}  # the shortcut check (finetune.exposure_check)
        self.exposure = check.get("message", "") if check.get("flagged") else ""
        if self.exposure:
            lines.append("<span style='color:#c05800; font-weight:bold'>⚠ Exposure check: "
                         f"{html.escape(self.exposure)}</span>")
        elif check:
            lines.append(html.escape(check["headline"]))
        lines.append("Thresholds were chosen on these same patients, so sensitivity and specificity are "
                     "optimistic. Research use only.")
        self.summary.setText("<br>".join(lines))
        return True

    def _plot_roc(self, per_class: dict[str, Any]) -> None:
        self.roc.clear()
        self.curves.clear()
        self.roc.plot([0, 1], [0, 1], pen=pg.mkPen("#666666", style=pg.QtCore.Qt.PenStyle.DashLine))
        names = []
        for i, (name, m) in enumerate(per_class.items()):
            curve = m.get("roc_curve") or {}
            if not curve.get("fpr"):
                continue
            colour = COLOURS[i % len(COLOURS)]
            # later curves dashed: two classes' curves are the same curve, and the second hid the first (a GUI walk)
            style = pg.QtCore.Qt.PenStyle.DashLine if self.curves else pg.QtCore.Qt.PenStyle.SolidLine
            self.curves[name] = self.roc.plot(curve["fpr"], curve["tpr"], pen=pg.mkPen(colour, width=2, style=style))
            names.append(f"<span style='color:{colour}'>{name} ({m['roc_auc']['value']:.2f})</span>")
        # the key is the title: a legend inside the plot would cover the curves
        self.roc.setTitle("validation ROC: " + " · ".join(names), size="9pt")

    def _fill_confusion(self, confusion: dict[str, Any]) -> None:
        table = self.confusion
        table.clear()
        if "rows_true_cols_pred" in confusion:
            classes = confusion["classes"]
            table.setRowCount(len(classes))
            table.setColumnCount(len(classes))
            table.setVerticalHeaderLabels([f"true {c}" for c in classes])
            table.setHorizontalHeaderLabels([f"predicted {c}" for c in classes])
            for i, row in enumerate(confusion["rows_true_cols_pred"]):
                for j, n in enumerate(row):
                    table.setItem(i, j, QtWidgets.QTableWidgetItem(str(n)))
        elif "labels" in confusion:
            labels = confusion["labels"]
            table.setRowCount(len(labels))
            table.setColumnCount(4)
            table.setVerticalHeaderLabels(list(labels))
            table.setHorizontalHeaderLabels(["TP", "FN", "FP", "TN"])
            for i, counts in enumerate(labels.values()):
                for j, key in enumerate(("tp", "fn", "fp", "tn")):
                    table.setItem(i, j, QtWidgets.QTableWidgetItem(str(counts[key])))
        self.confusion_title.setText(f"Confusion matrix, validation patients: {confusion.get('kind', '')}")
        self.confusion_title.setToolTip(self.confusion_title.text())
        table.resizeColumnsToContents()
        rows = min(table.rowCount(), 8)  # every row in sight (a long multi-label list scrolls inside the table)
        height = (table.horizontalHeader().height() + 2 * table.frameWidth()
                  + sum(table.rowHeight(i) for i in range(rows)) + 2)
        table.setFixedHeight(max(height, 48))
