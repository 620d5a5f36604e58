"""`python -m app.bench.batch_report FOLDER`: batch-score a folder in the real main window (offscreen), once with the
files decoded in the window's reader processes (what the Batch tab does) and once decoded in the window's own
process (what it did before), and print as one JSON line each run's wall time and the longest stall of the event
loop. Started as a process by `medflip bench batch` (medflip_core imports no Qt)."""

from __future__ import annotations

import json
import sys
import time

from app.bench.report_window import EventLoopStalls, offscreen_window


def _run_batch(app, window, folder: str, reader) -> dict:
    from app.workers import Task

    labels = window.engine.bundle.default_labels
    done: dict = {}
    task = Task(window.session.score_folder, folder, labels, None, reader=reader)
    with EventLoopStalls() as stalls:
        start = time.perf_counter()
        window._run(task, lambda rows: done.setdefault("rows", rows), lambda m: done.setdefault("error", m))
        while not done:
            app.processEvents()
            time.sleep(0.005)
        wall = time.perf_counter() - start
    if "error" in done:
        raise SystemExit(done["error"])
    return {"wall_s": wall, "rows": len(done["rows"]), "errors": sum("error" in r for r in done["rows"]),
            "longest_event_loop_stall_s": stalls.longest, "stalls_over_100ms": stalls.over(0.1)}


def measure(folder: str) -> dict:
    app, window = offscreen_window(wait_for_model=True)
    _run_batch(app, window, folder, window.pixels.opener)  # warm-up: encoder sessions, text embeddings
    workers = _run_batch(app, window, folder, window.pixels.opener)
    here = _run_batch(app, window, folder, None)
    window.close()
    return {"in_workers": workers, "in_window_process": here}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
