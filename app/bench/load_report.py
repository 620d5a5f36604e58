"""`python -m app.bench.load_report FOLDER`: open a folder in the real main window (offscreen) and print, as one JSON
line, peak RSS, time to the first image on screen, time to the end of the load and the longest stall of the
event loop meanwhile. Started as a process by `medflip bench open --gui` (medflip_core imports no Qt)."""

from __future__ import annotations

import json
import sys
import time

from app.bench.report_window import EventLoopStalls, offscreen_window


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        return int(next(x for x in fh if x.startswith(field + ":")).split()[1]) / 1024


def _workers_peak_mb() -> float:
    """The peak RSS of the window's worker processes (reading and decoding images), added up."""
    import multiprocessing

    total = 0.0
    for child in multiprocessing.active_children():
        try:
            with open(f"/proc/{child.pid}/status") as fh:
                total += int(next(x for x in fh if x.startswith("VmHWM:")).split()[1]) / 1024
        except (OSError, StopIteration):
            continue
    return total


def measure(folder: str) -> dict:
    app, window = offscreen_window()
    base = _status_mb("VmRSS")
    with EventLoopStalls() as stalls:
        start = time.perf_counter()
        window.open_paths([folder])
        first = None
        while window.last_load is None or window._loads:
            app.processEvents()
            if first is None and window.viewer.shows_image():
                first = time.perf_counter() - start
            time.sleep(0.005)
        total = time.perf_counter() - start
    app.processEvents()
    if first is None and window.viewer.shows_image():
        first = time.perf_counter() - start
    result = window.last_load
    out = {"baseline_rss_mb": base, "peak_rss_mb": _status_mb("VmHWM"), "end_rss_mb": _status_mb("VmRSS"),
           "first_image_s": first, "total_s": total, "images": len(window.images),
           "duplicates": sum(len(v) for v in result.duplicates.values()), "errors": len(result.errors),
           "longest_event_loop_stall_s": stalls.longest, "workers_peak_rss_mb": _workers_peak_mb()}
    window.close()
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
