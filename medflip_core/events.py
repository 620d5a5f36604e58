"""Trainer events: one JSON object per line, each with an "event" key.

The kinds and their fields are the dataclasses below (start, step, eval, checkpoint, skipped_step, done,
error): the trainer emits them and the GUI reads them back (`event_from_record`) in this one typed form.
The GUI reads them from the trainer's stdout to drive its plots; a cluster job can send them to a file.
Only rank 0 of a distributed run writes events.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, ClassVar


@dataclass
class StartEvent:
    name: ClassVar[str] = "start"
    job: str  # pretrain | finetune
    config: dict[str, Any]
    device: str
    world_size: int
    n_train: int
    n_val: int
    steps_per_epoch: int  # optimizer steps (gradient accumulation counted)
    total_steps: int | None
    start_step: int = 0
    resumed_from: str | None = None
    budget_s: float | None = None
    n_sentences: int | None = None  # pre-training
    classes: list[str] | None = None  # fine-tuning
    amp: str = "off"  # off | bf16 | fp16
    grad_scaler: bool = False
    text_cache_mb: float = 0  # 0: frozen text layers recomputed every step
    image_cache_mb: float = 0  # 0: images decoded at every epoch and evaluation
    validation_rule: str | None = None  # fine-tuning: how the validation patients were chosen, in words


@dataclass
class StepEvent:
    name: ClassVar[str] = "step"
    step: int
    epoch: int
    loss: float
    lr: float
    samples_per_s: float
    eta_s: float | None
    total_steps: int | None
    elapsed_s: float | None = None
    contrastive: float | None = None
    svd: float | None = None
    sigma1_pos: float | None = None  # mean token sigma_1 over pairs whose labels agree (cosine > 0.5)
    sigma1_neg: float | None = None  # ... and over the other pairs
    temperature: float | None = None
    grad_norm: float | None = None
    skipped_images: int = 0
    mask_s: float | None = None  # seconds of the step spent scoring patches and drawing the mask
    mim: float | None = None  # masked image modelling: reconstruction loss of the dropped patches (None: off)
    instance: float | None = None  # the two-view instance term's InfoNCE loss (None: off)


@dataclass
class EvalEvent:
    """Validation metrics; on the wire they sit beside `step` (val_auc, val_accuracy, data_set, ...)."""

    name: ClassVar[str] = "eval"
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointEvent:
    name: ClassVar[str] = "checkpoint"
    step: int
    path: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class SkippedStepEvent:
    name: ClassVar[str] = "skipped_step"
    step: int
    reason: str
    in_a_row: int = 1


@dataclass
class DoneEvent:
    name: ClassVar[str] = "done"
    status: str  # completed | cancelled
    step: int
    checkpoint: str | None
    elapsed_s: float | None = None
    skipped_images: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    weight_digests: list[str] = field(default_factory=list)
    reason: str | None = None  # the signal that cancelled the run
    image_cache: dict = field(default_factory=dict)  # per loader ("train", "val"): images, MB, hits, refused

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass
class ErrorEvent:
    name: ClassVar[str] = "error"
    message: str
    kind: str  # the error class, or "internal"
    step: int | None = None
    traceback: str | None = None


Event = StartEvent | StepEvent | EvalEvent | CheckpointEvent | SkippedStepEvent | DoneEvent | ErrorEvent
EVENT_TYPES: dict[str, type] = {cls.name: cls for cls in (StartEvent, StepEvent, EvalEvent, CheckpointEvent,
                                                          SkippedStepEvent, DoneEvent, ErrorEvent)}


def event_fields(event: Event) -> dict[str, Any]:
    """The wire form's fields (without "event" and "time")."""
    data = asdict(event)
    if isinstance(event, EvalEvent):
        return {"step": event.step, **data["metrics"]}
    return data


def event_from_record(record: dict[str, Any]) -> Event | None:
    """The typed event of a parsed line, or None for a kind this version does not know."""
    cls = EVENT_TYPES.get(record.get("event", ""))
    if cls is None:
        return None
    if cls is EvalEvent:
        rest = {k: v for k, v in record.items() if k not in ("event", "time", "step")}
        return EvalEvent(step=int(record.get("step", 0)), metrics=rest)
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in record.items() if k in known})
    except TypeError:  # a required field is missing: not an event of this kind
        return None


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

    def emit(self, event: str | Event, **extra: Any) -> None:
        """Write one event: a typed event, or a kind name and its fields."""
        if not self.enabled or self._stream is None:
            return
        if not isinstance(event, str):
            event, extra = event.name, {**event_fields(event), **extra}
        record = {"event": event, "time": round(time.time(), 3), **extra}
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
