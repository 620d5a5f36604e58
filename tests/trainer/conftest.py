"""A small real ImageFolder (Kermany images, symlinked) and a helper that runs the real trainer process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def small_folder(shared_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kermany_small")
    src = shared_data / "cxr-pneumonia-kermany" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir()
        for f in sorted((src / cls).iterdir())[:16]:
            (root / cls / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="session")
def corpus(shared_data) -> Path:
    return shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz"


def trainer_cmd(job: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "trainer", job, *args]


def small_args(folder: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["--images", str(folder), "--corpus", str(corpus), "--max-sentences", "300", "--image-size", "112",
            "--batch-size", "4", "--val-fraction", "0.25", "--max-val-images", "8", "--warmup-steps", "1",
            "--out-dir", str(out), *extra]


def run_trainer(job: str, args: list[str], timeout: float = 600, **kwargs) -> tuple[int, list[dict], str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(trainer_cmd(job, *args), capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=REPO, **kwargs)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, events, proc.stderr


class TrainerTools:
    """The helpers above as a fixture (test modules cannot import conftest under importlib mode)."""

    repo = REPO
    cmd = staticmethod(trainer_cmd)
    args = staticmethod(small_args)
    run = staticmethod(run_trainer)


@pytest.fixture(scope="session")
def tt() -> TrainerTools:
    return TrainerTools()


@pytest.fixture(scope="session")
def trained_run(small_folder, corpus, tmp_path_factory) -> Path:
    """One real pre-training run shared by the export and engine tests."""
    out = tmp_path_factory.mktemp("run")
    code, events, err = run_trainer("pretrain", small_args(small_folder, corpus, out, "--max-steps", "4",
                                                           "--eval-every", "4", "--checkpoint-every", "2"))
    assert code == 0, err[-3000:]
    assert events[-1]["event"] == "done"
    return out
