"""scripts/gpu_check.sh, the prepared GPU check, run end to end on the CPU (--cpu): every check passes on a real
data sample made by scripts/gpu_check_sample.sh, one line each, and a missing sample is one FAIL line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_every_check_passes_on_the_cpu(tmp_path, shared_data):
    env = {**os.environ, "GPU_CHECK_SAMPLE": str(tmp_path / "sample"), "MEDFLIP_SHARED_DATA": str(shared_data),
           "PYTHON": sys.executable, "GPU_CHECK_OUT": str(tmp_path / "out")}
    made = subprocess.run(["bash", "scripts/gpu_check_sample.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stderr
    assert len(list((tmp_path / "sample" / "kermany" / "NORMAL").iterdir())) == 160
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu", str(tmp_path / "sample")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    names = [line.split()[1] for line in lines if line.startswith(("PASS", "FAIL", "INFO"))]
    assert names == ["environment", "pretrain+mim", "unmasked", "masked/unmasked", "torchrun", "export",
                     "onnxruntime"], lines
    assert all(not line.startswith("FAIL") for line in lines)
    assert "decoder" not in next(line for line in lines if " export " in line)


def test_a_missing_sample_is_one_fail_line(tmp_path):
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu", str(tmp_path / "nothing")], cwd=REPO,
                          env={**os.environ, "PYTHON": sys.executable, "GPU_CHECK_OUT": str(tmp_path / "out")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "FAIL sample" in done.stdout and "gpu_check_sample.sh" in done.stdout
