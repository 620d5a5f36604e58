"""`python -m app.bench.labelling_report FOLDER [ANSWERS] [THINK_S]`: label a folder in the real main window
(offscreen, 1280x800) with key presses and print, as one JSON line, for every answer the time from the key press to
the next film's pixels painted in the viewer, whether a refit of the head was running meanwhile, and the time to
prepare the folder, the refits done and the final learning-curve point. Started as a process by `medflip bench
labelling` (medflip_core imports no Qt); `measure` is also called by a test on a few films."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from app.bench.report_window import offscreen_window

PREPARE_TIMEOUT_S = 900.0
FILM_TIMEOUT_S = 60.0


def truth_key(name: str) -> str:
    """The key of the right answer for a Kermany film: 'person…' files are pneumonia (2), the others normal (1)."""
    return "2" if Path(name).name.startswith("person") else "1"


def _same_file(a: Path, b: Path) -> bool:
    return a == b or a.absolute() == b.absolute()


def _on_screen(ws, film) -> bool:
    """The viewer shows `film`'s radiograph (its full pixels, not a placeholder or the film before)."""
    rg = ws.viewer.radiograph
    return rg is not None and ws.viewer.displayed_pixels() is not None and _same_file(rg.path, film.path)


def _wait(app, until, timeout_s: float, what: str) -> None:
    deadline = time.perf_counter() + timeout_s
    while not until():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.0005)


def _idle(app, seconds: float) -> None:
    """The event loop keeps turning while the user looks at the film (read-ahead and refits land meanwhile)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def measure(folder: str | Path, answers: int = 100, think_s: float = 0.5, window=None) -> dict:
    """Start the Labelling tab on `folder` in the main window (`window`, or a fresh offscreen one at 1280x800) and
    answer `answers` films with key presses (the truth from the file name). Per answer: `latency_ms` from the key
    press until the next film's pixels are painted (waiting for its file to be read if it was not read ahead),
    `handler_ms` of it in the key's handler (the answer written, the next film chosen and shown), `refitting`
    whether a refit ran at the press, `read_ahead` whether the film was read before the press."""
    from PySide6.QtTest import QTest

    if window is None:
        app, window = offscreen_window()
    else:
        from PySide6 import QtWidgets

        app = QtWidgets.QApplication.instance()
    ws = window.labelling
    window.tabs.setCurrentWidget(ws)
    ws.folder.setText(str(folder))
    start = time.perf_counter()
    ws.start()
    if ws.job is None:
        raise SystemExit(f"the Labelling tab did not start: {ws.status.text()}")
    job = ws.job
    _wait(app, lambda: job.prepared and job.film is not None, PREPARE_TIMEOUT_S, "the folder to be prepared")
    _wait(app, lambda: _on_screen(ws, job.film), FILM_TIMEOUT_S, "the first film")
    prepare_s = time.perf_counter() - start
    refits_before = ws.refits_done
    records: list[dict] = []
    for _ in range(answers):
        film = job.film
        if film is None:
            break
        _idle(app, think_s)
        ws.setFocus()
        refitting = ws._refitting
        answered = job.answered
        pressed = time.perf_counter()
        QTest.keyClick(ws, truth_key(film.name))
        handled = time.perf_counter()  # the key's handler has returned (the answer is on disk)
        if job.answered != answered + 1:
            raise SystemExit(f"the key for {film.name} was not taken as an answer: {ws.status.text()}")
        nxt = job.film
        read_ahead = nxt is not None and _on_screen(ws, nxt)  # shown by the key's own handler: read ahead
        if nxt is not None:
            _wait(app, lambda n=nxt: _on_screen(ws, n), FILM_TIMEOUT_S, f"film {nxt.name}")
            ws.viewer.graphics.viewport().repaint()  # its pixels painted, not only handed to the view
        nxt_ready = time.perf_counter()
        records.append({"film": film.name, "key": truth_key(film.name), "next": nxt.name if nxt else None,
                        "latency_ms": (nxt_ready - pressed) * 1000.0,
                        "handler_ms": (handled - pressed) * 1000.0, "refitting": refitting,
                        "read_ahead": read_ahead})
    _wait(app, lambda: not ws._refitting and not job.refit_due(), PREPARE_TIMEOUT_S, "the last refit")
    last = job.curve[-1] if job.curve else None
    point = None if last is None else {"labels": last.labels, "auc": last.auc, "ci95": list(last.ci95),
                                       "val_films": last.val_films, "val_patients": last.val_patients,
                                       "zero_shot_auc": last.zero_shot_auc, "what": last.what}
    return {"films": len(job.films), "answered": job.answered, "prepare_s": prepare_s, "think_s": think_s,
            "refits": ws.refits_done - refits_before, "curve_points": len(job.curve), "final_point": point,
            "curve_on_screen": ws.curve.isVisible() and ws.curve.curve.getData()[0] is not None,
            "window_size": [window.width(), window.height()], "answers": records}


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    think = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    print(json.dumps(measure(sys.argv[1], n, think)))
