"""A tab whose content scrolls as one page when the window is smaller than it needs: what it shows never raises
the window's minimum size (1280x720 fits), and it never scrolls sideways."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


def scroll_page(owner: QtWidgets.QWidget, content: QtWidgets.QWidget, min_height: int) -> QtWidgets.QScrollArea:
    """Make `content` the whole of `owner`, inside a frameless vertical scroll area (returned)."""
    page = QtWidgets.QScrollArea()
    page.setWidget(content)
    page.setWidgetResizable(True)
    page.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    page.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    page.setMinimumHeight(min_height)
    outer = QtWidgets.QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(page)
    return page
