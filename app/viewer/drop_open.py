"""Files dropped anywhere in the window open them, also on text boxes (which would otherwise insert
`file:///…` into the text, which then gets scored)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtWidgets


def local_paths(mime: QtCore.QMimeData) -> list[str]:
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class DropToOpen(QtCore.QObject):
    """Event filter for text widgets: a drop of local files opens them instead of inserting their URLs."""

    def __init__(self, open_paths: Callable[[list[str]], None], parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._open_paths = open_paths

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        kind = event.type()
        if kind in (QtCore.QEvent.Type.DragEnter, QtCore.QEvent.Type.DragMove, QtCore.QEvent.Type.Drop):
            paths = local_paths(event.mimeData())  # type: ignore[attr-defined]
            if paths:
                event.acceptProposedAction()  # type: ignore[attr-defined]
                if kind == QtCore.QEvent.Type.Drop:
                    self._open_paths(paths)
                return True
        return super().eventFilter(watched, event)

    def watch_text_boxes(self, root: QtWidgets.QWidget) -> None:
        """Install on every line edit and text edit under root (their viewport receives the drops)."""
        for edit in root.findChildren(QtWidgets.QLineEdit):
            edit.installEventFilter(self)
        for edit in root.findChildren(QtWidgets.QAbstractScrollArea):
            if isinstance(edit, QtWidgets.QPlainTextEdit | QtWidgets.QTextEdit):
                edit.viewport().installEventFilter(self)
                edit.installEventFilter(self)

