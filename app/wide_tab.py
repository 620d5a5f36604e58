"""A tab that takes the window's whole width while it is in front (a workspace: Labelling, Training).

The window splitter's browser and viewer fold while such a tab is shown and come back, as they were, when it is
hidden; `sizes_outside()` is what the window saves, so the next start never opens with them folded away."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets


class WideWhileShown:
    """Mixin for a QWidget tab; put it before the Qt class in the bases so its show/hide handlers run."""

    _wide: list[int] | None = None

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)  # type: ignore[misc]
        splitter = self._window_splitter()
        if splitter is not None and self._wide is None:
            self._wide = splitter.sizes()
            splitter.setSizes([0] * (splitter.count() - 1) + [sum(self._wide)])

    def hideEvent(self, event: QtGui.QHideEvent) -> None:
        super().hideEvent(event)  # type: ignore[misc]
        splitter = self._window_splitter()
        if splitter is not None and self._wide is not None:
            splitter.setSizes(self._wide)
        self._wide = None

    def sizes_outside(self) -> list[int] | None:
        """The window splitter's sizes as they were before this tab took the width (None when it is not shown)."""
        return list(self._wide) if self._wide is not None else None

    def _window_splitter(self) -> QtWidgets.QSplitter | None:
        widget = self.parentWidget()  # type: ignore[attr-defined]
        while widget is not None and not isinstance(widget, QtWidgets.QSplitter):
            widget = widget.parentWidget()
        return widget
