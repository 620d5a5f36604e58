"""Watch a real pre-training job in the real MedFLIP Studio window until it ends (issue 23 item 1).

Run on a display (e.g. `xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python scripts/watch_training.py ...`): the
window is shown at the given size with the Training tab and its live curves in front, the job is started from the
panel as a user would, a screenshot is saved every --shot-every seconds, and one JSON line at the end says how it
ended. A crash of the GUI shows as a missing final line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="an image folder to pre-train on")
    parser.add_argument("--corpus", required=True, help="reports (Open-i .tgz, folder, CSV or TXT)")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--budget", type=float, default=60.0, help="minutes")
    parser.add_argument("--size", default="1280x800")
    parser.add_argument("--shots", type=Path, default=Path("/tmp/medflip-watch"))
    parser.add_argument("--shot-every", type=float, default=300.0)
    args = parser.parse_args()

    from PySide6 import QtCore, QtWidgets

    from app.window.binding_check import binding_problem
    from app.window.main_window import MainWindow
    from medflip_core.events import DoneEvent, StepEvent

    app = QtWidgets.QApplication([sys.argv[0]])
    app.setStyle("Fusion")
    if binding_problem():
        print(json.dumps({"error": binding_problem()}))
        return 3
    window = MainWindow()
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    panel.images.setText(args.images)
    panel.corpus.setText(args.corpus)
    panel.max_steps.setValue(args.max_steps)
    panel.batch.setValue(args.batch)
    panel.image_size.setValue(args.image_size)
    panel.budget.setValue(args.budget)
    panel.start()
    args.shots.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    next_shot = 0.0
    rss_peak = 0
    idle = QtCore.QProcess.ProcessState.NotRunning
    while panel.process is not None or (panel.export_process is not None and panel.export_process.state() != idle):
        app.processEvents()
        time.sleep(0.02)
        elapsed = time.monotonic() - start
        if elapsed >= next_shot:
            window.grab().save(str(args.shots / f"training-{int(elapsed):05d}s.png"))
            next_shot += args.shot_every
        rss_peak = max(rss_peak, _rss_mb())
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(args.shots / "training-end.png"))
    steps = [e for e in panel.events if isinstance(e, StepEvent)]
    done = next((e for e in reversed(panel.events) if isinstance(e, DoneEvent)), None)
    print(json.dumps({"seconds": round(time.monotonic() - start, 1), "steps": steps[-1].step if steps else 0,
                      "status": done.status if done else None, "stats": panel.stats.text(),
                      "gui_rss_peak_mb": rss_peak, "error": panel.last_error or window.last_error}))
    window.close()
    return 0 if done is not None and done.status == "completed" else 1


def _rss_mb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
