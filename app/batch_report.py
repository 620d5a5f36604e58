"""`python -m app.batch_report FOLDER`: batch-score a folder in the real main window (offscreen), once with the
files decoded in the window's reader processes (what the Batch tab does) and once decoded in the window's own
process (what it did before), and print as one JSON line each run's wall time and the longest stall of the event
loop. Started as a process by `medflip bench batch` (medflip_core imports no Qt)."""

from __future__ import annotations

import itertools
import json
import os
import sys
import time


def _run_batch(app, window, folder: str, reader) -> dict:
    from PySide6 import QtCore

    from app.workers import Task

    ticks: list[float] = []
    timer = QtCore.QTimer(interval=20, timeout=lambda: ticks.append(time.perf_counter()))
    labels = window.engine.bundle.default_labels
    done: dict = {}
    task = Task(window.session.score_folder, folder, labels, None, reader=reader)
    timer.start()
    start = time.perf_counter()
    window._run(task, lambda rows: done.setdefault("rows", rows), lambda m: done.setdefault("error", m))
    while not done:
        app.processEvents()
        time.sleep(0.005)
    wall = time.perf_counter() - start
    timer.stop()
    if "error" in done:
        raise SystemExit(done["error"])
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    return {"wall_s": wall, "rows": len(done["rows"]), "errors": sum("error" in r for r in done["rows"]),
            "longest_event_loop_stall_s": max(gaps, default=0.0),
            "stalls_over_100ms": sum(g > 0.1 for g in gaps)}


def measure(folder: str) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.pixel_loader import shared_reader

    shared_reader("open")
    from PySide6 import QtWidgets

    from app.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    while window.engine is None:
        app.processEvents()
        time.sleep(0.01)
    _run_batch(app, window, folder, window.pixels.opener)  # warm-up: encoder sessions, text embeddings
    workers = _run_batch(app, window, folder, window.pixels.opener)
    here = _run_batch(app, window, folder, None)
    window.close()
    return {"in_workers": workers, "in_window_process": here}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
