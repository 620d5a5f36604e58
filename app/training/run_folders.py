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
    done = last_done(folder)
    if done is not None and not done.cancelled:  # resuming would train nothing and export over its model
        return (f"The run {folder.name} already completed (step {done.step}) and its model was exported; start a "
                "new run to train more.")
    return ""


def last_done(folder: str | Path):
    """The run's last `done` event kept in RUN/events.jsonl (None: it never ended, or its events were not kept)."""
    from medflip_core.events import DoneEvent

    return next((e for e in reversed(read_run_events(folder)) if isinstance(e, DoneEvent)), None)


def run_config(folder: str | Path) -> dict:
    """RUN/config.json as a dict ({} when it cannot be read)."""
    try:
        config = json.loads((Path(folder) / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


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


def resume_offer(folder: str | Path, why: str) -> str:
    """The sentence that offers an unfinished run at start-up: `why` "cancelled" (by the user), "closed" (with the
    window) or "stopped" (its trainer ended early)."""
    done = last_done(folder)
    where = f" at step {done.step}" if done is not None else ""
    how = "was cancelled" if why == "cancelled" else "stopped"
    when = " when MedFLIP Studio closed" if why == "closed" else ""
    return f"The run {Path(folder).name} {how}{where}{when}; Resume continues it from its last checkpoint."
