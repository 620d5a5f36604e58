"""`--mask-strategy`: the trainer masks with the chosen strategy, reports its cost, and rejects bad values."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("strategy", ["integrity", "attention"])
def test_guided_strategy_trains_and_reports_its_mask_cost(tt, small_folder, corpus, tmp_path, strategy):
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path / strategy, "--max-steps", "2",
                                                   "--eval-every", "0", "--mask-strategy", strategy))
    assert code == 0, err[-3000:]
    start = next(e for e in events if e["event"] == "start")
    assert start["config"]["mask_strategy"] == strategy and start["config"]["mask_guided_share"] == 0.5
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2
    for step in steps:
        assert 0.0 < step["mask_s"] < step["elapsed_s"]
    assert events[-1]["event"] == "done" and events[-1]["status"] == "completed"


@pytest.mark.parametrize(("flags", "message"), [
    (["--mask-strategy", "semantic"], "--mask-strategy must be one of random, integrity, attention"),
    (["--mask-guided-share", "1.5"], "--mask-guided-share must be between 0 and 1"),
])
def test_bad_mask_values_give_a_clear_error(tt, small_folder, corpus, tmp_path, flags, message):
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path, "--max-steps", "1", *flags))
    assert code == 2
    assert message in err
    assert events[-1]["event"] == "error" and message in events[-1]["message"]
