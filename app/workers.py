"""Background work off the GUI thread: a QRunnable that reports its result or a readable error."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from medflip_core.errors import MedflipError


class _Signals(QtCore.QObject):
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)
    progress = QtCore.Signal(int, int)
    partial = QtCore.Signal(object)


class Task(QtCore.QRunnable):
    """Runs fn(*args, **kwargs, progress=callback) in the thread pool; MedflipError messages reach the user
    as they are.

    `stoppable`: fn also gets `should_stop`, true once `cancel()` was called (the Cancel button, or the window
    closing). `partial="name"`: fn gets a callback under that name whose values reach `on_partial` on the GUI
    thread, in order and before the result (e.g. the first images of a long load)."""

    def __init__(self, fn: Callable[..., Any], *args: Any, with_progress: bool = False, stoppable: bool = False,
                 partial: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs, self.with_progress = fn, args, kwargs, with_progress
        self.stoppable, self.partial = stoppable, partial
        self.cancelled = False
        self.ended = False
        self.signals = _Signals()
        # Python keeps the task alive until its result is delivered; Qt must not delete it underneath.
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            kwargs = dict(self.kwargs)
            if self.with_progress:
                kwargs["progress"] = self._progress
            if self.stoppable:
                kwargs["should_stop"] = lambda: self.cancelled
            if self.partial:
                kwargs[self.partial] = lambda value: self._emit(self.signals.partial, value)
            result = self.fn(*self.args, **kwargs)
        except MedflipError as exc:
            self._emit(self.signals.failed, str(exc))
        except Exception as exc:  # a bug must not take the window down: show it and keep going
            traceback.print_exc()
            self._emit(self.signals.failed, f"Unexpected error: {type(exc).__name__}: {exc}")
        else:
            self._emit(self.signals.done, result)
        finally:
            self.ended = True  # fn has returned: nothing of this task runs any more

    def cancel(self) -> None:
        """Ask a stoppable task to end after the item in hand (a no-op for the others)."""
        self.cancelled = True

    def _progress(self, done: int, total: int) -> None:
        self._emit(self.signals.progress, done, total)

    @staticmethod
    def _emit(signal: Any, *values: Any) -> None:
        # RuntimeError: the window that asked was closed while the work ran, so nobody is left to tell
        with contextlib.suppress(RuntimeError):
            signal.emit(*values)


PROGRESS_MS = 50  # a task's progress reaches the window at most this often


class _LatestProgress:
    """A task's progress applied at most every PROGRESS_MS, the latest value only. A load of 1,000 links to one
    file counts 1,000 files in a fraction of a second, and each update of the status bar's progress bar costs
    ~1.5 ms (a layout): applied one by one, they froze the window for over a second."""

    def __init__(self, apply: Callable[[int, int], None], alive: Callable[[], bool]) -> None:
        self.apply, self.alive = apply, alive
        self.value: tuple[int, int] | None = None
        self.timer = QtCore.QTimer(singleShot=True, interval=PROGRESS_MS, timeout=self.flush)

    def __call__(self, done: int, total: int) -> None:
        self.value = (done, total)
        if not self.timer.isActive():
            self.timer.start()

    def flush(self) -> None:
        self.timer.stop()
        value, self.value = self.value, None
        if value is not None and self.alive():
            self.apply(*value)


def start(task: Task, on_done: Callable[[Any], None], on_failed: Callable[[str], None],
          on_progress: Callable[[int, int], None] | None = None) -> Task:
    task.signals.done.connect(on_done)
    task.signals.failed.connect(on_failed)
    if on_progress is not None:
        task.signals.progress.connect(on_progress)
    QtCore.QThreadPool.globalInstance().start(task)
    return task


class TaskRunner:
    """The window's background work: runs tasks, remembers which are in flight, delivers nothing once closed,
    and for a `latest` kind (e.g. "retrieve") delivers only the newest request's result: requests of one kind
    can finish out of order in the thread pool, and an older answer must not overwrite a newer one."""

    def __init__(self) -> None:
        self._tasks: list[Task] = []
        self._tickets: dict[str, int] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        """Closing the window stops its stoppable work at once (a load), not after the process is hidden."""
        self._closed = value
        if value:
            for task in self._tasks:
                task.cancel()

    def busy(self) -> bool:
        return bool(self._tasks)

    def invalidate(self, latest: str) -> None:
        """Results (and progress) of the `latest` kind asked for so far are not delivered: e.g. a search made
        with the model just replaced, whose hits must not land after the new model's."""
        self._tickets[latest] = self._tickets.get(latest, 0) + 1

    def run(self, task: Task, on_done: Callable[[Any], None], on_failed: Callable[[str], None],
            on_progress: Callable[[int, int], None] | None = None, latest: str = "",
            on_partial: Callable[[Any], None] | None = None) -> None:
        ticket = self._tickets[latest] = self._tickets.get(latest, 0) + 1
        self._tasks.append(task)

        def current() -> bool:  # the window is open and no newer request of this kind was made
            return not self.closed and (not latest or ticket == self._tickets[latest])

        progress = _LatestProgress(on_progress, current) if on_progress is not None else None
        if on_partial is not None:
            task.signals.partial.connect(lambda value: None if self.closed else on_partial(value))

        def deliver(callback: Callable[[Any], None], value: Any) -> None:
            self._tasks.remove(task)
            if progress is not None:
                progress.flush()  # the last count before the result
            if not current():
                return  # the window is gone, or a newer request of this kind was made
            callback(value)

        start(task, lambda result: deliver(on_done, result), lambda message: deliver(on_failed, message),
              progress)
