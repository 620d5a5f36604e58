"""The Training tab's live plots under a long stream of real trainer events (issue 23 item 1).

The soak runs in its own process: the crash it guards against (shiboken6 6.12.0 losing references to None) aborts
the interpreter, which must fail this test, not end the test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medflip_core.events import event_from_record

SOAK = Path(__file__).with_name("training_plots_soak.py")


@pytest.fixture(scope="module")
def recorded_events(small_folder, corpus, tt, tmp_path_factory) -> Path:
    """The events of a real 4-step pre-training run with two evaluations, as the trainer wrote them."""
    run = tmp_path_factory.mktemp("soak") / "run"
    events = run.parent / "events.jsonl"
    code, records, stderr = tt.run("pretrain", tt.args(small_folder, corpus, run, "--max-steps", "4",
                                                       "--eval-every", "2", "--image-size", "64"))
    assert code == 0, stderr[-2000:]
    events.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert sum(r["event"] == "step" for r in records) == 4 and any(r["event"] == "eval" for r in records)
    return events


def test_the_qt_binding_keeps_its_references_to_none(qapp):
    from app.window.binding_check import binding_problem, none_references_lost

    assert none_references_lost() == 0
    assert binding_problem() == ""


@pytest.mark.slow
def test_live_plots_survive_minutes_of_real_trainer_events(recorded_events):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    n, rate = 1500, 20  # a fixed number of events (~75 s at the trainer's rate; longer on a busy machine)
    proc = subprocess.run([sys.executable, str(SOAK), str(recorded_events), "--events", str(n), "--rate", str(rate)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "Fatal Python error" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == n and report["repaints"] == n // rate + 1  # every event fed, painted as it came
    assert report["none_refcount_drift"] > -1000  # the broken binding loses thousands a second
    assert report["curve_points"] == report["series_points"] == report["steps"]


def test_a_burst_of_events_redraws_each_curve_a_bounded_number_of_times(qtbot, recorded_events):
    from app.training.plots import PLOT_REFRESH_MS
    from app.training.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    calls = {"n": 0}
    curve = panel.plots.curves["loss"]
    original = curve.setData

    def counted(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    curve.setData = counted
    step = next(json.loads(line) for line in recorded_events.read_text().splitlines() if '"step"' in line)
    for i in range(1, 501):  # 500 steps arrive in one read of the trainer's output
        panel.handle_event(event_from_record({**step, "step": i}))
    assert calls["n"] == 0  # nothing redrawn per event
    qtbot.wait(PLOT_REFRESH_MS * 3)
    assert calls["n"] == 1  # one redraw for the whole burst
    xs, ys = curve.getData()
    assert list(xs) == list(range(1, 501)) and len(ys) == 500


def test_a_new_run_starts_on_fresh_axes(qtbot, recorded_events):
    """A GUI walk: a new run's empty plot kept the previous run's axes (steps 0-200 for a run at step 3)."""
    from app.training.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    step = next(json.loads(line) for line in recorded_events.read_text().splitlines() if '"step"' in line)
    for i in range(1, 201):
        panel.handle_event(event_from_record({**step, "step": i}))
    panel.plots.flush()
    qtbot.waitUntil(lambda: panel.plots.loss_plot.viewRange()[0][1] >= 150, timeout=5000)
    panel.plots.clear()
    from app.training.plots import EMPTY_STEPS

    assert panel.plots.loss_plot.viewRange()[0][1] <= EMPTY_STEPS and panel.plots.sigma_plot.viewRange()[0][1] <= (
        EMPTY_STEPS)
    for i in range(1, 4):  # the new run's own steps: the axes follow them
        panel.handle_event(event_from_record({**step, "step": i}))
    panel.plots.flush()
    qtbot.waitUntil(lambda: 2 <= panel.plots.loss_plot.viewRange()[0][1] <= 10, timeout=5000)


def test_the_instance_term_has_its_curve_and_its_key(qtbot, recorded_events):
    """A run with --instance-weight plots its InfoNCE loss beside the reconstruction; a run without leaves the
    curve empty."""
    from app.training.plots import PLOT_REFRESH_MS
    from app.training.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    title = panel.plots.loss_plot.getPlotItem().titleLabel
    assert "reconstruction" in title.text and "instance" not in title.text  # a run without it: not in the key
    step = next(json.loads(line) for line in recorded_events.read_text().splitlines() if '"step"' in line)
    panel.handle_event(event_from_record({**step, "step": 1}))
    panel.handle_event(event_from_record({**step, "step": 2, "instance": 2.5}))
    qtbot.wait(PLOT_REFRESH_MS * 3)
    xs, ys = panel.plots.curves["instance"].getData()
    assert list(xs) == [2] and list(ys) == [2.5]
    assert "instance" in title.text
    panel.plots.clear()  # the next run
    assert "instance" not in title.text


def test_an_empty_plot_counts_whole_steps_and_then_follows_the_run(qtbot, recorded_events):
    """A GUI walk: the empty loss plot's step axis read 0.1 … 0.9."""
    from app.training.plots import EMPTY_STEPS, PLOT_REFRESH_MS
    from app.training.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.plots.loss_plot.getViewBox().viewRange()[0] == [0, EMPTY_STEPS]
    step = next(json.loads(line) for line in recorded_events.read_text().splitlines() if '"step"' in line)
    for i in range(1, 41):
        panel.handle_event(event_from_record({**step, "step": i}))
    qtbot.wait(PLOT_REFRESH_MS * 3)
    low, high = panel.plots.loss_plot.getViewBox().viewRange()[0]
    assert low <= 1 and high >= 40  # the axis follows the points
    panel.plots.clear()  # a new run
    assert panel.plots.loss_plot.getViewBox().viewRange()[0] == [0, EMPTY_STEPS]
