"""Typed events: what the trainer writes is what the GUI reads back, field for field."""

from __future__ import annotations

import json

from medflip_core.events import (
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    EventWriter,
    SkippedStepEvent,
    StartEvent,
    StepEvent,
    event_from_record,
    parse_event_line,
)

EVENTS = [
    StartEvent(job="pretrain", config={"lr": 1e-3, "model": {"image_size": 112}}, device="cpu", world_size=1,
               n_train=24, n_val=8, steps_per_epoch=6, total_steps=4, amp="bf16", grad_scaler=False),
    StepEvent(step=1, epoch=0, loss=1.2, lr=5e-4, samples_per_s=3.0, eta_s=None, total_steps=4,
              sigma1_pos=0.3, sigma1_neg=0.2, grad_norm=0.9),
    EvalEvent(step=2, metrics={"val_auc": 0.7, "n_val": 8, "data_set": "validation split"}),
    CheckpointEvent(step=2, path="/tmp/x/step-00000002", metrics={"val_auc": 0.7}),
    SkippedStepEvent(step=3, reason="gradients held inf or NaN", in_a_row=1),
    DoneEvent(status="cancelled", step=3, checkpoint=None, reason="SIGTERM"),
    ErrorEvent(message="the loss became NaN", kind="NonFiniteLoss", step=3),
]


def test_every_event_round_trips_through_a_line(tmp_path):
    target = tmp_path / "events.jsonl"
    writer = EventWriter(str(target))
    for event in EVENTS:
        writer.emit(event)
    writer.close()
    lines = target.read_text().splitlines()
    read = [event_from_record(parse_event_line(line)) for line in lines]
    assert read == EVENTS
    eval_line = json.loads(lines[2])
    assert eval_line["event"] == "eval" and eval_line["val_auc"] == 0.7  # metrics sit beside the step
    done_line = json.loads(lines[5])
    assert done_line["status"] == "cancelled" and "cancelled" not in done_line and read[5].cancelled


def test_unknown_or_incomplete_records_are_not_events():
    assert event_from_record({"event": "telemetry", "x": 1}) is None
    assert event_from_record({"event": "step", "step": 1}) is None  # required fields missing
    step = event_from_record({"event": "step", "time": 1.0, "step": 1, "epoch": 0, "loss": 1.0, "lr": 0.1,
                              "samples_per_s": 2.0, "eta_s": None, "total_steps": None, "from_a_newer": True})
    assert isinstance(step, StepEvent) and step.loss == 1.0
