"""The throughput benchmark runs real training steps (tiny sizes here; figures come from `medflip bench`)."""

from __future__ import annotations

import pytest

from medflip_core.bench.throughput import measure, round_ratios


def test_throughput_measures_every_ratio_and_the_full_svd_step():
    result = measure([0.0, 0.75], batch=4, image_size=64, vision="vit_tiny_patch16_224", warmup=1, repeats=1,
                     threads=None)
    rows = result["rows"]
    assert [r["mask_ratio"] for r in rows] == [0.0, 0.75]
    assert rows[0]["step_speedup"] == 1.0 and rows[0]["tower_speedup"] == 1.0
    for key in ("tower_speedup_by_round", "step_speedup_by_round"):  # mask 0 against itself in every round
        assert rows[0][key] == {"median": 1.0, "low": 1.0, "high": 1.0, "rounds": 1}
        assert 0 < rows[1][key]["low"] <= rows[1][key]["median"] <= rows[1][key]["high"]
    assert all(r["tower_samples_per_s"] > 0 and r["step_samples_per_s"] > 0 for r in rows)
    assert "step_full_svd_samples_per_s" in rows[1] and "step_full_svd_samples_per_s" not in rows[0]
    assert rows[1]["step_full_svd_samples_per_s"] > 0 and rows[1]["step_power_svd_samples_per_s"] > 0
    # FLOP counts: masking removes three quarters of the patch tokens; the text layers are not masked, so the
    # whole step's FLOP ratio sits below the tower's (64 px: 16 patches, 4 kept)
    assert rows[0]["tower_flop_ratio"] == 1.0 and rows[0]["tower_flops"] > rows[1]["tower_flops"] > 0
    assert 2.0 < rows[1]["tower_flop_ratio"] < 17 / 5 + 0.5
    assert 1.0 < rows[1]["step_flop_ratio"] < rows[1]["tower_flop_ratio"]
    # text_train=frozen: the encoder's output is cached, so the step's ceiling rises above partial mode's
    frozen = result["text_frozen"]
    assert frozen["mask_ratio"] == 0.75 and frozen["step_samples_per_s"] > 0 and frozen["step_speedup"] > 0
    assert rows[1]["step_flop_ratio"] < frozen["step_flop_ratio"] <= rows[1]["tower_flop_ratio"] + 0.5
    # the text side is the trainer's: IU report sentences, batches of different padded widths with padding
    assert result["corpus"].endswith("NLMCXR_reports.tgz")
    assert len(result["text_widths"]) == 8 and len(set(result["text_widths"])) > 1
    assert 0.2 < result["text_real_token_share"] < 1.0
    split = result["masked_step_split"]  # the masked step's time, split: tower, text layers, the rest
    assert split["tower_s"] > 0 and split["text_s"] > 0 and split["other_s"] >= 0
    # (medians of separate timings: on a loaded machine the text layers alone can take longer than a whole step,
    # so only the arithmetic is asserted here; `medflip bench throughput` prints the figures)
    assert split["text_share"] == pytest.approx(split["text_s"] / rows[1]["step_s"])
    assert split["step_speedup_without_text"] == pytest.approx(
        (rows[0]["step_s"] - split["text_s"]) / (rows[1]["step_s"] - split["text_s"]))
    # the masked step with the reconstruction decoder (issue 32): more FLOPs than without it, fewer than unmasked
    mim = result["mim"]
    assert (mim["mask_ratio"], mim["decoder_depth"], mim["decoder_width"]) == (0.75, 2, 64)
    assert rows[1]["step_flops"] < mim["step_flops"] < rows[0]["step_flops"]
    assert 1.0 < mim["flop_ratio_vs_unmasked"] < rows[1]["step_flop_ratio"]
    assert mim["step_samples_per_s"] > 0 and mim["speedup_vs_unmasked"] > 0
    assert 0 < mim["speedup_by_round"]["low"] <= mim["speedup_by_round"]["high"]


def test_real_data_line_runs_the_trainer_on_real_jpegs_between_two_synthetic_timings(small_folder, corpus):
    from medflip_core.bench.throughput import real_data_row

    def real() -> dict:
        return real_data_row(small_folder, corpus, batch=4, image_size=64, vision="vit_tiny_patch16_224",
                             ratio=0.75, workers=2, steps=2, threads=None)

    result = measure([0.0, 0.75], batch=4, image_size=64, vision="vit_tiny_patch16_224", warmup=0, repeats=1,
                     threads=None, bracketed=real)
    row = result["real_data"]
    assert row["steps_timed"] == 2 and row["step_samples_per_s"] > 0 and row["num_workers"] == 2
    before, after = row["synthetic_before_samples_per_s"], row["synthetic_after_samples_per_s"]
    assert before > 0 and after > 0
    assert row["vs_synthetic"] == pytest.approx(row["step_samples_per_s"] / ((before + after) / 2))


def test_round_ratios_pair_the_timings_of_each_round():
    # a machine twice as slow in round 2 moves both timings: the paired ratio stays 4, the medians' ratio not
    summary = round_ratios([1.0, 2.0, 1.1], [0.25, 0.5, 0.25])
    assert summary == {"median": 4.0, "low": 4.0, "high": 4.4, "rounds": 3}
    with pytest.raises(ValueError):
        round_ratios([1.0], [0.5, 0.4])
