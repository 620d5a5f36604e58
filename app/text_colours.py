"""Text colours on the light panels, legible (WCAG AA, 4.5:1 or more on the panel's grey), set by palette.

By palette and not by style sheet: a widget's style sheet also styles its tooltip, so the orange and grey texts had
orange or grey tooltips on pale yellow that a GUI walk could hardly read; and the earlier greys (#8a939b, #9aa4ad,
2.6-3:1 on #efefef) were the "grey-on-grey" it asked to darken."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

NOTE = "#56616b"  # secondary text: explanations, hints (5.6:1 on #efefef)
CAUTION = "#a9460f"  # a caution: orange, dark enough to read (5.0:1 on #efefef)


def tint(widget: QtWidgets.QWidget, colour: str) -> None:
    """The widget's text in `colour`; its tooltip keeps the tooltip's own colours."""
    palette = widget.palette()
    for role in (QtGui.QPalette.ColorRole.WindowText, QtGui.QPalette.ColorRole.Text):
        palette.setColor(role, QtGui.QColor(colour))
    widget.setPalette(palette)
