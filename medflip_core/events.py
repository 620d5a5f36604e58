"""Trainer events: one JSON object per line, each with an "event" key (start, step, eval, checkpoint, done, error).

The GUI reads them from the trainer's stdout to drive its plots; a cluster job can send them to a file.
Only rank 0 of a distributed run writes events.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import IO, Any


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays parseable."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    def __init__(self, target: str = "-", enabled: bool = True) -> None:
        self.enabled = enabled
        self._own = False
        self._stream: IO[str] | None = None
        if not enabled:
            return
        if target == "-":
            self._stream = sys.stdout
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
            self._own = True

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled or self._stream is None:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self._stream.write(json.dumps(_clean(record), separators=(",", ":")) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._own and self._stream is not None:
            self._stream.close()
        self._stream = None


def parse_event_line(line: str) -> dict[str, Any] | None:
    """The event on one line of trainer output, or None for a line that is not an event."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "event" in record else None
