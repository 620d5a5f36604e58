"""File names cut at their start: the end tells a name from its neighbours (the image's number, the extension).
A GUI walk read Kermany's IM-0115-0001.jpeg and IM-0117-0001.jpeg both as "IM-011…1.jpeg" when they were cut in
the middle; cut at the start they read "…0115-0001.jpeg" and "…0117-0001.jpeg"."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class KeepEndDelegate(QtWidgets.QStyledItemDelegate):
    """Elides a cell's text at its start. `children_only`: only in a tree's rows that have a parent (a group's
    title keeps the view's own elision)."""

    def __init__(self, parent: QtCore.QObject | None = None, children_only: bool = False) -> None:
        super().__init__(parent)
        self.children_only = children_only

    def initStyleOption(self, option: QtWidgets.QStyleOptionViewItem, index: QtCore.QModelIndex) -> None:
        super().initStyleOption(option, index)
        if not self.children_only or index.parent().isValid():
            option.textElideMode = QtCore.Qt.TextElideMode.ElideLeft
