"""A delegate that cuts a cell's text where the view's own elision would hide what tells it apart. File names are
cut at their start: the end tells a name from its neighbours (a GUI walk read Kermany's IM-0115-0001.jpeg and
IM-0117-0001.jpeg both as "IM-011…1.jpeg" when they were cut in the middle; at the start they read
"…0115-0001.jpeg" and "…0117-0001.jpeg"). A warning is cut at its end: its first words say what it is (cut in the
middle a Batch cell read "⚠ this… films")."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class ElideDelegate(QtWidgets.QStyledItemDelegate):
    """Elides a cell's text with `mode`. `children_only`: only in a tree's rows that have a parent (a group's
    title keeps the view's own elision)."""

    def __init__(self, mode: QtCore.Qt.TextElideMode, parent: QtCore.QObject | None = None,
                 children_only: bool = False) -> None:
        super().__init__(parent)
        self.mode = mode
        self.children_only = children_only

    def initStyleOption(self, option: QtWidgets.QStyleOptionViewItem, index: QtCore.QModelIndex) -> None:
        super().initStyleOption(option, index)
        if not self.children_only or index.parent().isValid():
            option.textElideMode = self.mode
