"""Issue 31 item 9, "mask ratio 1.5 silently becomes 0.50": every command that takes a mask ratio refuses one
outside its range with a sentence naming the range and a non-zero exit code, before any work (and never a
traceback). The GUI side is tests/app/training/test_app_mask_ratio_restore.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medflip_core.errors import MedflipError
from medflip_core.masking import MAX_MASK_RATIO, mask_ratio_problem

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _film(shared_data: Path) -> Path:
    return sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[0]


@pytest.mark.parametrize(("ratio", "above_zero", "fits"), [
    (0.0, False, True), (0.0, True, False), (0.75, True, True), (MAX_MASK_RATIO, True, True), (0.95, False, False),
    (1.5, False, False), (-0.1, False, False), (float("nan"), False, False)])
def test_the_range_is_said_in_one_place(ratio, above_zero, fits):
    problem = mask_ratio_problem(ratio, above_zero)
    assert (problem is None) == fits
    if problem:
        assert f"at most {MAX_MASK_RATIO:g}" in problem and "share of each image's patches dropped" in problem


@pytest.mark.parametrize("given", ["1.5", "0", "-0.2", "nan", "three quarters"])
def test_medflip_reconstruct_refuses_a_ratio_outside_its_range(shared_data, tmp_path, given):
    out = tmp_path / "recon.png"
    proc = _run("-m", "medflip_core.cli", "reconstruct", str(tmp_path), str(_film(shared_data)), "--out", str(out),
                "--mask-ratio", given)
    message = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and not out.exists()
    assert "--mask-ratio" in message and "above 0 and at most 0.9" in message, message


def test_reconstruct_itself_refuses_it_before_reading_the_run(shared_data, tmp_path):
    from medflip_core.imaging import load_image
    from medflip_core.model.reconstruct import reconstruct

    with pytest.raises(MedflipError, match=r"mask ratio must be above 0 and at most 0\.9 .*not 1\.5"):
        reconstruct(tmp_path, load_image(_film(shared_data)), keep=[0, 1, 2], ratio=1.5)


def test_the_throughput_bench_refuses_a_ratio_outside_its_range():
    proc = _run("-m", "medflip_core.cli", "bench", "throughput", "--ratios", "0,1.5", "--real-steps", "0")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "at least 0 and at most 0.9" in proc.stderr and "not 1.5" in proc.stderr, proc.stderr[-500:]


@pytest.mark.parametrize(("value", "said"), [("1.5", "at least 0 and at most 0.9"),
                                             ('"0.5"', "must be a number from 0 to 0.9")])
def test_a_trainer_config_file_with_a_bad_ratio_is_refused_with_the_range(shared_data, corpus, tmp_path, value,
                                                                         said):
    config = tmp_path / "run.yaml"
    images = shared_data / "cxr-pneumonia-kermany" / "train"
    config.write_text(f"images: [{images}]\ncorpus: {corpus}\nmax_steps: 1\nmask_ratio: {value}\n")
    proc = _run("-m", "trainer", "pretrain", "--config", str(config), "--out-dir", str(tmp_path / "run"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert said in proc.stderr and "--mask-ratio" in proc.stderr
    assert not (tmp_path / "run" / "config.json").exists()  # refused before the run began
