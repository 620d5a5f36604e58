"""The Labelling tab's keys: 1-9, S, U, B, Enter, taken before the window's own shortcuts (1-7 are its W/L presets)
while the focus is in the tab and not in a text box: an application event filter accepts the shortcut override, so
the key arrives as a key press, and runs the tab's action for it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets


class LabelKeys(QtCore.QObject):
    """Installed on the application; `bindings` maps a Qt key (no modifier but the keypad's) to an action."""

    def __init__(self, tab: QtWidgets.QWidget, bindings: dict[int, Callable[[], None]]) -> None:
        super().__init__(tab)
        self.tab, self.bindings = tab, bindings
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def binding(self, obj: QtCore.QObject, event: QtCore.QEvent) -> Callable[[], None] | None:
        if not isinstance(event, QtGui.QKeyEvent) or not self.tab.isVisible():
            return None
        mods = event.modifiers() & ~QtCore.Qt.KeyboardModifier.KeypadModifier
        if mods != QtCore.Qt.KeyboardModifier.NoModifier or isinstance(obj, QtWidgets.QLineEdit | QtWidgets.QComboBox):
            return None
        if not isinstance(obj, QtWidgets.QWidget) or not (obj is self.tab or self.tab.isAncestorOf(obj)):
            return None
        return self.bindings.get(int(event.key()))

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:
        kind = event.type()
        if kind in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress):
            action = self.binding(obj, event)
            if action is not None:
                event.accept()
                if kind == QtCore.QEvent.Type.KeyPress:
                    action()
                return True
        return False
