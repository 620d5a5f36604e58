"""What the `--gui` benchmarks (`app.bench.load_report`, `app.bench.batch_report`) share: the real main window,
offscreen, and a meter of how long its event loop went without turning (a 20 ms timer's ticks: a gap is a stall
the user feels)."""

from __future__ import annotations

import itertools
import os
import sys
import time


def offscreen_window(wait_for_model: bool = False):
    """(QApplication, MainWindow) shown offscreen at 1280x800, started as medflip-studio starts it (the reader
    processes first); with `wait_for_model`, after the default model has loaded."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.viewer.pixel_loader import shared_reader

    shared_reader("open")  # as medflip-studio does before it imports the window
    from PySide6 import QtWidgets

    from app.window.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    while wait_for_model and window.engine is None:
        app.processEvents()
        time.sleep(0.01)
    return app, window


class EventLoopStalls:
    """`with EventLoopStalls() as stalls:` ticks a 20 ms timer on the event loop meanwhile; then `longest` is the
    longest gap between ticks and `over(0.1)` how many gaps were longer than 100 ms."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self._timer = None

    def __enter__(self) -> EventLoopStalls:
        from PySide6 import QtCore

        self._timer = QtCore.QTimer(interval=20, timeout=lambda: self.ticks.append(time.perf_counter()))
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.ticks)]

    @property
    def longest(self) -> float:
        return max(self.gaps, default=0.0)

    def over(self, seconds: float) -> int:
        return sum(g > seconds for g in self.gaps)
