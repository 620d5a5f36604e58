"""The Zero-shot tab's probability bar; a classifier's decision threshold is drawn on it as a vertical mark."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

HALO = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))  # px around each glyph


class ThresholdBar(QtWidgets.QProgressBar):
    """A probability bar (0..1000) with its decision threshold drawn as a vertical mark. Its per cent is dark text
    with a light halo, readable on the fill and beside it alike: the style's own text is white on the fill and
    black beside it, and near 50 % the fill's edge cut through the digits ("4|7.2 %", GUI walk 44)."""

    def __init__(self, threshold: float | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.threshold = threshold

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        option = QtWidgets.QStyleOptionProgressBar()
        self.initStyleOption(option)
        option.textVisible = False  # the groove and the fill only: the text comes last, over the mark too
        painter = QtWidgets.QStylePainter(self)
        painter.drawControl(QtWidgets.QStyle.ControlElement.CE_ProgressBar, option)
        if self.threshold is not None:
            x = round(self.threshold * (self.width() - 1))
            painter.setPen(QtGui.QPen(QtGui.QColor("#ffffff"), 2))
            painter.drawLine(x, 0, x, self.height())
            painter.setPen(QtGui.QPen(QtGui.QColor("#000000"), 1))
            painter.drawLine(x + 1, 0, x + 1, self.height())
        if self.isTextVisible() and self.text():
            self._draw_text(painter)
        painter.end()

    def _draw_text(self, painter: QtGui.QPainter) -> None:
        rect, text = self.rect(), self.text()
        align = int(QtCore.Qt.AlignmentFlag.AlignCenter)
        palette = self.palette()
        painter.setPen(palette.color(QtGui.QPalette.ColorRole.Base))
        for dx, dy in HALO:
            painter.drawText(rect.translated(dx, dy), align, text)
        painter.setPen(palette.color(QtGui.QPalette.ColorRole.Text))
        painter.drawText(rect, align, text)
