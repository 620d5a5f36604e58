"""`medflip-studio`: start the desktop app. --open/--screenshot/--offscreen make it scriptable."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="medflip-studio", description="MedFLIP Studio (research use only)")
    parser.add_argument("paths", nargs="*", help="files or folders to open")
    parser.add_argument("--open", action="append", default=[], metavar="PATH")
    parser.add_argument("--model", help="a model bundle folder to use")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render, save a screenshot and exit")
    parser.add_argument("--offscreen", action="store_true", help="no display needed (with --screenshot)")
    parser.add_argument("--size", help="window size WxH (default: as left last time, else 1400x860 shrunk to fit "
                                       "the screen)")
    parser.add_argument("--tab", help="tab to show in the screenshot (e.g. 'Mask sampling')")
    parser.add_argument("--heatmap", metavar="LABEL", help="show this label's heat-map in the screenshot (Zero-shot "
                                                           "tab, once the image is scored)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for work before a screenshot")
    parser.add_argument("--startup-report", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def close_on_signals(app: Any, window: Any) -> Any:
    """SIGTERM (a logout, `kill`) and Ctrl+C in the terminal close the window as its close button does, without the
    question a running training job asks: the session is saved, the job stopped after its step with a checkpoint
    and offered for resuming next time, the reader processes ended (a GUI walk's SIGTERM left "leaked semaphore
    objects" and no saved session). Python runs a signal handler only between bytecodes, so a timer wakes the
    interpreter while Qt's event loop waits; the returned QTimer must be kept."""
    from PySide6 import QtCore

    def close(_signum: int, _frame: object) -> None:
        window.ask_before_closing = False
        window.close()
        app.quit()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, close)
    waker = QtCore.QTimer(interval=200)
    waker.timeout.connect(lambda: None)
    waker.start()
    return waker


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.viewer.pixel_loader import shared_reader

    shared_reader("open")  # the workers that read images import the imaging stack while the window is built
    from PySide6 import QtGui, QtWidgets

    from app.viewer.file_open import FileOpenFilter
    from app.window.binding_check import binding_problem
    from app.window.main_window import MainWindow
    from medflip_core.resources import resources_dir

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    app.setApplicationName("MedFLIP Studio")
    app.setOrganizationName("MedFLIP")
    icon = resources_dir() / "icons" / "medflip.png"
    if icon.is_file():
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    app.setStyle("Fusion")
    problem = binding_problem()
    if problem:  # said once, before anything the user makes can be lost to the crash
        print(f"error: {problem}", file=sys.stderr)
        if not args.offscreen:
            QtWidgets.QMessageBox.critical(None, "MedFLIP Studio cannot start safely", problem)
        return 3
    window = MainWindow()
    file_open = FileOpenFilter(window.open_paths, window)
    app.installEventFilter(file_open)
    size = None
    if args.size:
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
            size = (width, height)
        except ValueError:
            print(f"warning: --size {args.size!r} is not WxH (e.g. 1280x800); fitting the screen instead",
                  file=sys.stderr)
    window.fit_to_screen(size)
    if args.model:
        window.use_model_folder(args.model)
    window.show()
    if args.startup_report:  # used by `medflip bench startup`
        app.processEvents()
        launched = float(os.environ.get("MEDFLIP_LAUNCH_TIME", "0") or 0)
        print(f"window shown {time.time() - launched:.3f} s after launch")
        return 0
    paths = [*args.paths, *args.open]
    if paths:
        window.open_paths(paths)
    if not args.screenshot:
        waker = close_on_signals(app, window)  # noqa: F841 (kept alive while the loop runs)
        return app.exec()

    deadline = time.monotonic() + args.timeout
    if args.tab:
        for i in range(window.tabs.count()):
            if window.tabs.tabText(i).lower() == args.tab.lower():
                window.tabs.setCurrentIndex(i)
    scored_once = False
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
        if window.busy():
            continue
        if paths and not window.images and not window.last_error:
            continue
        if window.engine is not None and window.images and not window.last_scores and not scored_once:
            window.zero_shot.request()
            scored_once = True
            continue
        break
    if args.heatmap and window.images:
        window.zero_shot.heat_label.setCurrentText(args.heatmap)
        while time.monotonic() < deadline and not window.viewer.overlay_item.isVisible():
            app.processEvents()
            time.sleep(0.02)
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)
    ok = window.grab().save(args.screenshot)
    print(f"screenshot {'saved to' if ok else 'FAILED:'} {args.screenshot}")
    if window.last_scores:  # scripted runs (the packaging smoke test) read these
        print("scores " + json.dumps({k: round(float(v), 4) for k, v in window.last_scores.items()}))
    if window.last_error:
        print(f"error {window.last_error}")
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
