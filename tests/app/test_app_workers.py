"""Background tasks: an older request that finishes last never overwrites the newer one's result."""

from __future__ import annotations

import time

from app.workers import Task, TaskRunner


def _slow(value: str, seconds: float) -> str:
    time.sleep(seconds)
    return value


def test_only_the_latest_request_of_a_kind_is_delivered(qtbot):
    runner, shown, other = TaskRunner(), [], []
    runner.run(Task(_slow, "old", 0.5), shown.append, shown.append, latest="retrieve")
    runner.run(Task(_slow, "new", 0.0), shown.append, shown.append, latest="retrieve")
    runner.run(Task(_slow, "unrelated", 0.2), other.append, other.append)  # no kind: always delivered
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10000)
    assert shown == ["new"] and other == ["unrelated"]


def test_nothing_is_delivered_after_close(qtbot):
    runner, shown = TaskRunner(), []
    runner.run(Task(_slow, "late", 0.3), shown.append, shown.append)
    runner.closed = True
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10000)
    assert shown == []
