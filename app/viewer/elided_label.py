"""One-line labels that never widen their window: `ElidedLabel` takes the room there is and elides the rest (the
whole text is its tooltip); `FittingLabel` shows the longest of its wordings that fits its width."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class ElidedLabel(QtWidgets.QLabel):
    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None, min_chars: int = 8) -> None:
        super().__init__(parent)
        self._full = ""
        self._min_chars = min_chars
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        super().setText(text)
        self.updateGeometry()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QtCore.QSize:
        metrics = self.fontMetrics()
        return QtCore.QSize(metrics.averageCharWidth() * self._min_chars, metrics.height())

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, self.fontMetrics().height())

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        rect = self.contentsRect()
        elided = self.fontMetrics().elidedText(self._full, QtCore.Qt.TextElideMode.ElideRight, rect.width())
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        painter.drawText(rect, int(self.alignment() | QtCore.Qt.AlignmentFlag.AlignVCenter), elided)


class FittingLabel(QtWidgets.QLabel):
    """A read-out whose minimum width is fixed (the width of `min_text`), whatever it says: it shows the first of
    its wordings (longest first) that fits, the last one elided when none does; `text()` is what is shown, the
    tooltip the whole first wording (or the tooltip given with the wordings)."""

    def __init__(self, min_text: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._min_text = min_text
        self._wordings: tuple[str, ...] = ("",)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred)

    def set_wordings(self, *wordings: str, tooltip: str = "") -> None:
        self._wordings = wordings or ("",)
        self.setToolTip(tooltip or self._wordings[0])
        self._fit()
        self.updateGeometry()

    def full_text(self) -> str:
        return self._wordings[0]

    def minimumSizeHint(self) -> QtCore.QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._min_text) + margins.left() + margins.right() + 4
        return QtCore.QSize(width, super().minimumSizeHint().height())

    def sizeHint(self) -> QtCore.QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._wordings[0]) + margins.left() + margins.right() + 4
        return QtCore.QSize(max(width, self.minimumSizeHint().width()), super().sizeHint().height())

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room, metrics = self.contentsRect().width(), self.fontMetrics()
        shown = next((w for w in self._wordings if metrics.horizontalAdvance(w) <= room), None)
        if shown is None:
            shown = metrics.elidedText(self._wordings[-1], QtCore.Qt.TextElideMode.ElideRight, room)
        if shown != super().text():
            super().setText(shown)
