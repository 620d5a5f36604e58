"""Warnings about the image on screen, one line each: its first words always shown, the rest elided, the whole
warning in the line's tooltip. A GUI walk: on a leg film the Zero-shot tab's two warnings took six lines and pushed
the Heat-map chooser below the fold of a 1280x800 window."""

from __future__ import annotations

from PySide6 import QtWidgets

from app.panels.label_marks import wrapped
from app.text_colours import CAUTION, tint
from app.viewer.elided_label import ElidedLabel

MIN_CHARS = 30  # the line's narrowest width, in average characters: the warning's first words stay readable


class WarningLines(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.lines: list[ElidedLabel] = []
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.setVisible(False)

    def set_warnings(self, warnings: list[str]) -> None:
        """One line per warning, each a sentence of its own, capitalised ("⚠ unlike most chest films…" read as a
        fragment); none hides the widget."""
        for line in self.lines:
            self.layout().removeWidget(line)
            line.deleteLater()
        self.lines = []
        for warning in warnings:
            line = ElidedLabel(f"⚠ {warning[:1].upper()}{warning[1:]}", min_chars=MIN_CHARS)
            tint(line, CAUTION)
            line.setToolTip(wrapped(line.full_text()))  # wrapped: a plain tooltip is one line across the screen
            self.layout().addWidget(line)
            self.lines.append(line)
        self.setVisible(bool(warnings))

    def texts(self) -> list[str]:
        """The whole warnings, as shown (with their ⚠)."""
        return [line.full_text() for line in self.lines]
