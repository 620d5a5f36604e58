"""`medflip bench labelling`'s measurement on a few real films in the real main window: the figures it returns are
well formed (one wait per answer, none negative, the counts agree). No timing thresholds: the figures are the
benchmark's to print."""

from __future__ import annotations

import itertools
import math

from app.bench.labelling_report import measure, truth_key
from medflip_core.bench.labelling import make_study, print_figures, summarise


def test_the_labelling_benchmark_returns_well_formed_figures(window, shared_data, tmp_path, capsys):
    folder = make_study(shared_data, tmp_path / "study", 14)
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 14 and sum(n.startswith("person") for n in names) == 7  # half of each class
    report = measure(folder, answers=10, think_s=0.0, window=window)
    answers = report["answers"]
    assert report["films"] == 14 and report["answered"] == 10 and len(answers) == 10
    assert report["window_size"] == [1280, 800]
    assert len({a["film"] for a in answers}) == 10 and all(a["film"] in names for a in answers)
    assert all(a["key"] == truth_key(a["film"]) for a in answers)
    assert all(a["next"] == b["film"] for a, b in itertools.pairwise(answers))
    for a in answers:
        assert math.isfinite(a["latency_ms"]) and 0 <= a["handler_ms"] <= a["latency_ms"]
        assert isinstance(a["refitting"], bool) and isinstance(a["read_ahead"], bool)
    assert report["prepare_s"] > 0 and report["refits"] >= 1 and report["curve_points"] <= report["refits"]
    figures = summarise(report)
    assert figures["answers"] == 10 and 0 <= figures["over_target"] <= 10
    assert 0 <= figures["median_ms"] <= figures["p95_ms"] <= figures["max_ms"]
    assert figures["max_ms"] == max(a["latency_ms"] for a in answers)
    assert figures["not_read_ahead"] == sum(not a["read_ahead"] for a in answers)
    assert figures["refits"] == report["refits"]
    print_figures(figures, report["films"], report["think_s"])
    out = capsys.readouterr().out
    assert "10 answers" in out and "over 200 ms" in out and "refits of the head during the run" in out
