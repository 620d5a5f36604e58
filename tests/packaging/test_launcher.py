"""packaging/launcher.py is the frozen app's entry point: from source it must route --medflip and --trainer
the way the bundle does (the GUI path is covered by tests/app)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _launch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, str(REPO / "packaging" / "launcher.py"), *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


def test_launcher_runs_the_cli_on_a_real_dicom(shared_data):
    dcm = shared_data / "dicom" / "RG1_J2KR.dcm"
    proc = _launch("--medflip", "info", str(dcm), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info[0]["modality"] == "CR" and info[0]["size"] == [1955, 1841]
    assert "JPEG 2000" in info[0]["transfer_syntax"]


def test_launcher_runs_the_trainer_and_reports_bad_input_clearly(tmp_path, corpus):
    proc = _launch("--trainer", "pretrain", "--images", str(tmp_path / "nowhere"), "--corpus", str(corpus),
                   "--max-steps", "2", "--out-dir", str(tmp_path / "r"))
    assert proc.returncode != 0
    error = json.loads(proc.stdout.strip().splitlines()[-1])
    assert error["event"] == "error" and "nowhere" in error["message"]
