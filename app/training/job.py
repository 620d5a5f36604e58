"""A training job seen from the GUI: the child process (QProcess, separate stdout/stderr), the JSON-lines
event stream on its stdout, and how far it is. The Training tab (training_panel.py) decides what to do with
each event; nothing here touches a widget."""

from __future__ import annotations

import json
from collections.abc import Callable

from PySide6 import QtCore

from medflip_core.events import (
    CheckpointEvent,
    DoneEvent,
    EvalEvent,
    Event,
    SkippedStepEvent,
    StartEvent,
    StepEvent,
    event_from_record,
    parse_event_line,
)


class EventStream:
    """Splits a child's stdout into lines and typed events; a line cut by a read waits for its end."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[str, Event]]:
        """The events in the bytes read so far, each with its record as a JSON line (to keep in the run folder).
        Lines that are not events (a library's print) are dropped."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        found = []
        for raw in lines:
            record = parse_event_line(raw.decode("utf-8", "replace"))
            event = event_from_record(record) if record is not None else None
            if event is not None:
                found.append((json.dumps(record), event))
        return found


def start_process(parent: QtCore.QObject, program: str, args: list[str], *, stdout: Callable[[], None],
                  stderr: Callable[[], None], finished: Callable[[int, QtCore.QProcess.ExitStatus], None],
                  error: Callable[[QtCore.QProcess.ProcessError], None]) -> QtCore.QProcess:
    """Start a job's child process with its four callbacks connected."""
    process = QtCore.QProcess(parent)
    process.setProcessChannelMode(QtCore.QProcess.ProcessChannelMode.SeparateChannels)
    process.readyReadStandardOutput.connect(stdout)
    process.readyReadStandardError.connect(stderr)
    process.finished.connect(finished)
    process.errorOccurred.connect(error)
    process.start(program, args)
    return process


def progress_percent(event: StepEvent, budget_s: float | None = None) -> int:
    """How far the run is: the trainer stops at whichever of its step limit and time budget comes first, so the
    larger of the two fractions done. Both only grow (an ETA-based share went backwards when the steps slowed)."""
    done = 0.0
    if event.total_steps:
        done = event.step / event.total_steps
    if budget_s and event.elapsed_s is not None:
        done = max(done, event.elapsed_s / budget_s)
    return int(100 * min(done, 1.0))


class Progress:
    """A job's progress bar value: 0 when it starts, never backwards within a run, 100 only when it completed."""

    def __init__(self) -> None:
        self.value = 0
        self.budget_s: float | None = None

    def reset(self) -> int:
        self.value, self.budget_s = 0, None
        return 0

    def started(self, event: StartEvent) -> None:
        self.budget_s = event.budget_s

    def step(self, event: StepEvent) -> int:
        self.value = max(self.value, min(progress_percent(event, self.budget_s), 99))
        return self.value

    def completed(self) -> int:
        self.value = 100
        return 100


def format_eta(seconds: float) -> str:
    """'ETA 40 s', 'ETA 12 min', 'ETA 1 h 05 min' (never '0.0 min' while work is left)."""
    if seconds < 1:
        return "finishing"
    if seconds < 90:
        return f"ETA {seconds:.0f} s"
    if seconds < 3600:
        return f"ETA {seconds / 60:.0f} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"ETA {hours} h {rest // 60:02d} min"


SMALL_VALIDATION = 30  # validation images below which a figure is said to move a lot by chance


def eval_line(event: EvalEvent, job: str = "") -> str:
    """An evaluation in words (a GUI walk read "{'val_accuracy': 1.0, 'val_auc': 1.0}" on 4 images, unqualified).
    A fine-tune's AUC is its classifier's (a later walk read a "zero-shot ROC AUC" that moved every evaluation)."""
    m = event.metrics
    auc = "classifier ROC AUC" if job == "finetune" else "zero-shot ROC AUC"
    names = {"val_auc": auc, "val_accuracy": "accuracy"}
    figures = [f"{names.get(k, k.removeprefix('val_').replace('_', ' '))} {v:.3f}" for k, v in m.items()
               if k.startswith("val_") and isinstance(v, int | float)]
    n = m.get("n_val")
    where = f" on {n} validation image{'s' if n != 1 else ''}" if isinstance(n, int) else ""
    small = (f"; only {n} images: a figure this small moves a lot by chance" if isinstance(n, int)
             and 0 < n < SMALL_VALIDATION else "")
    source = f" ({m['data_set']})" if m.get("data_set") else ""
    return f"eval at step {event.step}{where}: {', '.join(figures) or 'nothing to measure'}{small}{source}"


def log_line(event: Event, job: str = "") -> str:
    """The line the trainer log shows for an event ('' for the step events, which go to the plots); `job`: the
    running job (pretrain or finetune), which says what an evaluation's AUC is."""
    if isinstance(event, StartEvent):
        precision = f", {event.amp}" if event.amp != "off" else ""
        if event.job == "finetune":
            rule = f" (validation side: {event.validation_rule})" if event.validation_rule else ""
            return (f"started on {event.device}{precision}: {event.n_train} training images, "
                    f"{event.n_val} validation{rule}")
        return (f"started on {event.device}{precision}: {event.n_train} training images, "
                f"{event.n_val} validation, {event.n_sentences or 0} sentences")
    if isinstance(event, EvalEvent):
        return eval_line(event, job)
    if isinstance(event, CheckpointEvent):
        return f"checkpoint: {event.path}"
    if isinstance(event, SkippedStepEvent):
        return f"step {event.step} skipped: {event.reason}"
    if isinstance(event, DoneEvent):
        return "done: " + ("cancelled — checkpoint kept, Resume continues it" if event.cancelled else "completed")
    return ""
