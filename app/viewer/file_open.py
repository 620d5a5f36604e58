"""Files handed to the running app by the desktop rather than on the command line (macOS Finder double-click
or "Open With" sends a QFileOpenEvent to the application object)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtGui


class FileOpenFilter(QtCore.QObject):
    """Application-level event filter: every FileOpen event becomes a call to `open_paths([path])`."""

    def __init__(self, open_paths: Callable[[list[str]], None], parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._open_paths = open_paths

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.FileOpen and isinstance(event, QtGui.QFileOpenEvent):
            path = event.file()
            if path:
                self._open_paths([path])
                return True
        return super().eventFilter(watched, event)
