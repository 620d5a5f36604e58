from __future__ import annotations

import json

from medflip_core.events import EventWriter, parse_event_line


def test_events_are_one_json_object_per_line_and_nan_becomes_null(tmp_path):
    target = tmp_path / "events.jsonl"
    writer = EventWriter(str(target))
    writer.emit("step", step=1, loss=float("nan"), sigma1=0.5, parts={"svd": float("inf")})
    writer.emit("done", status="completed")
    writer.close()
    lines = target.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["event"] == "step" and first["loss"] is None and first["parts"]["svd"] is None
    assert parse_event_line(lines[1])["status"] == "completed"


def test_parse_ignores_non_events():
    assert parse_event_line("INFO something") is None
    assert parse_event_line("{broken") is None
    assert parse_event_line('{"no_event": 1}') is None
    assert parse_event_line('  {"event": "start"}\n') == {"event": "start"}


def test_disabled_writer_writes_nothing(tmp_path):
    target = tmp_path / "e.jsonl"
    writer = EventWriter(str(target), enabled=False)
    writer.emit("step", step=1)
    assert not target.exists()
