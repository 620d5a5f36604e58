"""Soak of the Training tab's live plots, run as its own process by test_app_training_plots.py.

A real TrainingPanel, shown offscreen, is fed a fixed number of real trainer events (a recorded run's step and eval
events, cycled with rising step numbers) at up to a trainer's rate, while the event loop paints it. The count is
fixed, not the time: on a busy machine the soak takes longer, never feeds fewer events. PySide6/shiboken6
6.12.0 drops a reference to None on every call of a void C++ method (QPainter.drawLine, setPen, ...); on Python 3.11
None is not immortal, so this stream ends in "Fatal Python error: none_dealloc" within seconds. The script prints one
JSON line with what it measured; the test reads it and the exit code.

    python training_plots_soak.py EVENTS.jsonl --events 1500 --rate 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, when run as a script


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("events", type=Path, help="a real run's events, JSON lines")
    parser.add_argument("--events", dest="count", type=int, default=1500,
                        help="how many events to feed, however long it takes")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second, at most")
    args = parser.parse_args()

    from PySide6 import QtWidgets

    from app.training.training_panel import TrainingPanel
    from medflip_core.events import event_from_record

    records = [json.loads(line) for line in args.events.read_text().splitlines() if line.strip()]
    cycle = [r for r in records if r.get("event") in ("step", "eval")]
    if not cycle:
        print(json.dumps({"error": "no step or eval events in the recording"}))
        return 2
    app = QtWidgets.QApplication([])
    panel = TrainingPanel()
    panel.resize(1280, 700)
    panel.show()
    app.processEvents()

    none_before = sys.getrefcount(None)
    paints = 0
    sent = 0
    start = time.monotonic()
    period = 1.0 / args.rate
    step = 0
    while sent < args.count:
        record = dict(cycle[sent % len(cycle)])
        if record["event"] == "step":
            step += 1
        record["step"] = max(step, 1)
        panel.handle_event(event_from_record(record))
        sent += 1
        deadline = time.monotonic() + period
        while time.monotonic() < deadline:  # the event loop runs between events: timers fire, the plots paint
            app.processEvents()
            time.sleep(0.002)
        if sent % int(args.rate) == 0:  # and a full repaint every `rate` events, as an exposed window gets
            panel.repaint()
            paints += 1
    panel.repaint()  # the last events painted too
    paints += 1
    panel.plots.flush()
    app.processEvents()
    xs, _ = panel.plots.curves["loss"].getData()
    print(json.dumps({"events": sent, "steps": step, "seconds": round(time.monotonic() - start, 1),
                      "repaints": paints, "none_refcount_drift": sys.getrefcount(None) - none_before,
                      "curve_points": 0 if xs is None else len(xs),
                      "series_points": len(panel.plots.series["loss"][0])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
