"""`medflip bench throughput` times the step once per mask strategy and reports the scoring share."""

from __future__ import annotations

import pytest

from medflip_core.bench.throughput import main, measure


def test_a_row_per_strategy_with_its_mask_cost():
    result = measure([0.0, 0.75], batch=4, image_size=64, vision="vit_tiny_patch16_224", warmup=1, repeats=1,
                     threads=None, strategies=("random", "integrity", "attention"))
    rows = {r["strategy"]: r for r in result["strategies"]}
    assert list(rows) == ["random", "integrity", "attention"]
    for row in rows.values():
        assert row["mask_ratio"] == 0.75 and row["step_samples_per_s"] > 0
        assert 0.0 < row["mask_share"] < 1.0 and row["mask_s"] == pytest.approx(row["mask_share"] * row["step_s"])
    # attention runs a no-gradient pass of both towers; random only draws noise
    assert rows["attention"]["mask_s"] > rows["random"]["mask_s"]


def test_unknown_strategy_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--strategies", "random,checkerboard"])
    assert exit_info.value.code == 2
    assert "unknown mask strategy 'checkerboard'" in capsys.readouterr().err
