"""Fine-tuning the image tower of a real pre-trained checkpoint on a labelled folder."""

from __future__ import annotations

import pytest

from trainer.checkpoint import latest_checkpoint

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["linear", "full"])
def test_finetune_reports_per_class_metrics_and_confusion(tt, trained_run, small_folder, tmp_path, mode):
    init = latest_checkpoint(trained_run).path
    code, events, err = tt.run("finetune", ["--images", str(small_folder), "--init-from", str(init),
                                            "--image-size", "112", "--batch-size", "4", "--max-steps", "3",
                                            "--val-fraction", "0.25", "--finetune-mode", mode,
                                            "--warmup-steps", "0", "--out-dir", str(tmp_path)])
    assert code == 0, err[-2000:]
    start = events[0]
    assert start["job"] == "finetune" and start["classes"] == ["NORMAL", "PNEUMONIA"]
    ev = next(e for e in events if e["event"] == "eval")
    assert set(ev["per_class"]) == {"NORMAL", "PNEUMONIA"}
    matrix = ev["confusion_matrix"]["rows_true_cols_pred"]
    assert sum(map(sum, matrix)) == ev["n"] > 0
    assert events[-1]["event"] == "done" and events[-1]["step"] == 3
    assert latest_checkpoint(tmp_path).state["classes"] == ["NORMAL", "PNEUMONIA"]


def test_medflip_train_runs_the_same_trainer(tt, small_folder, tmp_path):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "train", "finetune", "--images",
                           str(small_folder), "--image-size", "112", "--batch-size", "4", "--max-steps", "1",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tt.repo)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["event"] == "done"
