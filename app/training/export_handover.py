"""A finished pre-training run becomes a model by an export in a child process (torch); one still running when
the window closes is handed to a detached process that outlives the app; the next start picks the finished
bundle up (or starts the export again if that process died).

Exports write their bundle atomically (a .partial folder renamed at the end), so a killed export never
leaves a half-written model behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from medflip_core.bundles.bundle import MANIFEST
from medflip_core.processes import medflip_command

SETTING = "pending_exports"


def start_export(parent: QtCore.QObject, run_dir: str, out: str,
                 done: Callable[[str, str], None]) -> QtCore.QProcess:
    """`medflip export RUN OUT --half-weights` in a child process; `done(out, error)` when it ends (error '' on
    success, else the end of its stderr)."""
    program, args = medflip_command(["export", run_dir, out, "--half-weights"])
    process = QtCore.QProcess(parent)

    def finished(code: int, _status: QtCore.QProcess.ExitStatus) -> None:
        err = bytes(process.readAllStandardError()).decode("utf-8", "replace").strip()
        done(out, "" if code == 0 else (err or f"exit code {code}"))

    process.finished.connect(finished)
    process.start(program, args)
    return process


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_detached(record: dict[str, Any]) -> dict[str, Any]:
    ok, pid = QtCore.QProcess.startDetached(record["program"], record["args"])
    return {**record, "pid": int(pid) if ok else 0}


def hand_over(process: QtCore.QProcess, settings: Any) -> dict[str, Any] | None:
    """Stop the in-app export of a running QProcess and restart it detached; remembered in the settings."""
    if process is None or process.state() == QtCore.QProcess.ProcessState.NotRunning:
        return None
    args = list(process.arguments())
    record = {"program": process.program(), "args": args, "out": args[args.index("export") + 2]}
    process.finished.disconnect()  # its end is no longer news for the closing window
    process.kill()
    process.waitForFinished(5000)
    record = start_detached(record)
    settings.set(SETTING, [*settings.get(SETTING, []), record])
    return record


def check_pending(settings: Any) -> tuple[list[str], bool, list[str]]:
    """(bundles ready now, whether an export still runs, exports given up); a died export is retried once."""
    ready, keep, failed = [], [], []
    for record in settings.get(SETTING, []):
        if Path(record["out"], MANIFEST).is_file():
            ready.append(record["out"])
        elif process_alive(int(record.get("pid", 0))):
            keep.append(record)
        elif record.get("attempts", 1) < 2:
            keep.append(start_detached({**record, "attempts": record.get("attempts", 1) + 1}))
        else:
            failed.append(record["out"])
    settings.set(SETTING, keep)
    return ready, bool(keep), failed
