"""The trainer validates on exactly the patients `medflip split` puts in val/ (same seed, same pattern)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer.config import TrainConfig
from trainer.training_data import build_training_data

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("pattern", [None, r"^(person\d+|IM-\d+|NORMAL2-IM-\d+)"])
def test_trainer_validation_split_equals_medflip_split(shared_data, tmp_path, pattern):
    folder = shared_data / "cxr-pneumonia-kermany" / "train"
    extra = ["--patient-pattern", pattern] if pattern else []
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "split", str(folder), str(tmp_path / "split"),
                           "--val-fraction", "0.15", "--seed", "3", *extra], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    linked = {p.resolve() for p in (tmp_path / "split" / "val").rglob("*") if p.is_symlink() or p.is_file()}
    cfg = TrainConfig(job="finetune", images=[str(folder)], val_fraction=0.15, seed=3, patient_pattern=pattern,
                      max_steps=1)
    data = build_training_data(cfg, tokenize=None)
    assert len(linked) > 100
    assert {r.path.resolve() for r in data.val} == linked
