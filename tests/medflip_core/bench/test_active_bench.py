"""medflip bench active on the shared NIH sample: both orders run the app's loop, the test patients stay apart from
the folder being labelled, a share of the answers goes to validation, and the figures are real AUCs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_bench_active_simulates_both_orders_on_held_out_patients(tmp_path, shared_data):
    env_cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "bench", "active", "--data", "nih", "--seeds", "1",
                           "--max-labels", "40", "--cache-dir", str(env_cache), "--json"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["base_model"] == "medflip-default" and out["refit_every"] >= 1
    (r,) = out["results"]
    assert r["data_set"] == "nih" and r["classes"] == ["No Finding", "Pneumonia"]
    # the bundled model held NIH patients out of pre-training: they are the test set, never labelled
    assert r["test_set"].startswith("the patients the base model held out")
    assert r["pool_patients"] + r["test_patients"] == r["patients"]
    assert r["pool_images"] + r["test_images"] == r["images"] and r["test_positives"] > 0
    assert 0.5 < r["zero_shot_test_auc"] < 1.0 and r["target_auc"] == pytest.approx(r["zero_shot_test_auc"] + 0.05)
    assert set(r["orders"]) == {"uncertainty", "random"}
    for order in r["orders"].values():
        assert set(order["auc_at"]) == {"10", "20", "40"}
        for figure in order["auc_at"].values():
            assert 0.0 <= figure["min"] <= figure["mean"] <= figure["max"] <= 1.0
        # about a quarter of the answers (patients fixed by id) validate and never train the head
        (validated,) = order["validation_answers_at_end"]
        assert 0 < validated < 40
        (reached,) = order["labels_to_target"]
        assert reached is None or 0 < reached <= 40
    # the embeddings went to the cache folder given (a re-run reads them from there)
    assert any(env_cache.rglob("*"))
