"""The panels' note and caution colours are legible (WCAG AA contrast on the window's grey) and set by palette, so a
tooltip keeps its own colours (a style sheet's colour also coloured the tooltip: orange on pale yellow)."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from app.text_colours import CAUTION, NOTE, tint


def _luminance(colour: QtGui.QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(a: QtGui.QColor, b: QtGui.QColor) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_note_and_caution_read_on_the_window_background(qtbot):
    label = QtWidgets.QLabel("a note")
    qtbot.addWidget(label)
    background = label.palette().color(QtGui.QPalette.ColorRole.Window)
    for colour in (NOTE, CAUTION):
        assert contrast(QtGui.QColor(colour), background) >= 4.5, (colour, background.name())
        assert contrast(QtGui.QColor(colour), QtGui.QColor("#efefef")) >= 4.5
    # the old greys and orange did not
    assert contrast(QtGui.QColor("#8a939b"), QtGui.QColor("#efefef")) < 3.2
    assert contrast(QtGui.QColor("#e8793a"), QtGui.QColor("#efefef")) < 3.0


def test_tint_colours_the_text_not_the_tooltip(qtbot):
    label = QtWidgets.QLabel("Pneumonia ∥")
    label.setToolTip("why")
    qtbot.addWidget(label)
    tint(label, CAUTION)
    assert label.palette().color(QtGui.QPalette.ColorRole.WindowText).name() == CAUTION
    assert label.styleSheet() == ""  # a style sheet would also style the tooltip
    assert QtWidgets.QToolTip.palette().color(QtGui.QPalette.ColorRole.ToolTipText).name() != CAUTION
