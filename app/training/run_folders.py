"""A pre-training run folder as the Training tab sees it: can it be resumed, which job made it, and the events the
GUI kept in it (RUN/events.jsonl, so a resumed run's plots continue its history). No widgets here."""

from __future__ import annotations

import json
from pathlib import Path

from medflip_core.bundles.checkpoint_layout import RUN_CONFIG, latest_checkpoint
from medflip_core.events import Event, event_from_record, parse_event_line

RUN_EVENTS = "events.jsonl"  # RUN/events.jsonl: every event the GUI received from the run, in order
PRETRAIN, FINETUNE = "pretrain", "finetune"


def run_problem(folder: str | Path) -> str:
    """Why a folder cannot be resumed ('' when it can): it needs its config and a complete checkpoint."""
    folder = Path(folder)
    if not (folder / RUN_CONFIG).is_file():
        return f"{folder.name} is not a training run folder (it has no {RUN_CONFIG})."
    if latest_checkpoint(folder) is None:
        return f"The run {folder.name} has no complete checkpoint to resume from; start it again."
    return ""


def run_job(folder: str | Path) -> str:
    """The trainer job a run folder was started with (pretrain, or the trainer's own finetune)."""
    try:
        return json.loads((Path(folder) / RUN_CONFIG).read_text(encoding="utf-8")).get("job") or PRETRAIN
    except (OSError, ValueError):
        return PRETRAIN


def read_run_events(folder: str | Path) -> list[Event]:
    """The events a run folder kept (RUN/events.jsonl; unparseable lines, e.g. a torn last line, skipped)."""
    path = Path(folder) / RUN_EVENTS
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        record = parse_event_line(line)
        event = event_from_record(record) if record is not None else None
        if event is not None:
            events.append(event)
    return events


def keep_events(folder: str | Path, lines: list[str]) -> None:
    """Append event lines to RUN/events.jsonl (raises OSError: the caller says so; the plots still work)."""
    with open(Path(folder) / RUN_EVENTS, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
