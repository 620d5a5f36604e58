"""The Zero-shot tab's probability bar; a classifier's decision threshold is drawn on it as a vertical mark."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets


class ThresholdBar(QtWidgets.QProgressBar):
    """A probability bar (0..1000) with its decision threshold drawn as a vertical mark."""

    def __init__(self, threshold: float | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.threshold = threshold

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        super().paintEvent(event)
        if self.threshold is None:
            return
        painter = QtGui.QPainter(self)
        x = round(self.threshold * (self.width() - 1))
        painter.setPen(QtGui.QPen(QtGui.QColor("#ffffff"), 2))
        painter.drawLine(x, 0, x, self.height())
        painter.setPen(QtGui.QPen(QtGui.QColor("#000000"), 1))
        painter.drawLine(x + 1, 0, x + 1, self.height())
        painter.end()
