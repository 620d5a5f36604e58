"""Where a training run keeps its checkpoints, and which one is the latest complete one. No torch here:
the trainer writes checkpoints (trainer/checkpoint.py), export and the GUI only find and read them.

Layout: RUN/checkpoints/step-00000120/{model.safetensors, optimizer.safetensors, state.json}.
A checkpoint is written as .step-00000120.partial and renamed when every file is on disk; replacing a
step's checkpoint renames the old folder to .step-00000120.old first, so a kill between the two renames
leaves the old one, which `list_checkpoints` puts back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medflip_core.bundles.bundle import MANIFEST

RUN_CONFIG = "config.json"  # RUN/config.json: the resolved training config (`--config` it with `--resume`)
RUN_MODEL_CONFIG = "model_config.json"
RUN_PREPROCESS = "preprocess.json"
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optimizer.safetensors"


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / CHECKPOINTS_DIR


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def partial_path(root: Path, step: int) -> Path:
    return root / f".{step_name(step)}.partial"


def replaced_path(root: Path, step: int) -> Path:
    return root / f".{step_name(step)}.old"


def _recover_replaced(root: Path) -> None:
    """A kill between 'old aside' and 'new in place' leaves only .step-N.old: put it back."""
    for old in root.glob(".step-*.old"):
        final = root / old.name[1 : -len(".old")]
        if not final.exists():
            try:
                os.replace(old, final)
            except OSError:
                continue


def list_checkpoints(out_dir: str | Path) -> list[Checkpoint]:
    """Complete checkpoints, oldest first. Incomplete (.partial) and unreadable folders are ignored."""
    root = checkpoint_dir(out_dir)
    found: list[Checkpoint] = []
    if not root.is_dir():
        return found
    _recover_replaced(root)
    for path in sorted(root.glob("step-*")):
        state_file = path / STATE_FILE
        if not (state_file.is_file() and (path / MODEL_FILE).is_file()):
            continue
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            step = int(state["step"])
        except (ValueError, KeyError, TypeError, OSError):
            continue
        found.append(Checkpoint(path=path, step=step, state=state))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(out_dir: str | Path) -> Checkpoint | None:
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / STATE_FILE).is_file()


def model_config_source(path: str | Path) -> dict[str, Any] | None:
    """The model shape recorded beside some weights: a bundle's manifest ("model") or a checkpoint's
    state ("model_config"); `path` is the folder or a weights file inside it. None when neither is there."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        if (folder / MANIFEST).is_file():
            return dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["model"])
        if (folder / STATE_FILE).is_file():
            return dict(json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))["model_config"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


__all__ = [
    "CHECKPOINTS_DIR",
    "MODEL_FILE",
    "OPTIM_FILE",
    "RUN_CONFIG",
    "RUN_MODEL_CONFIG",
    "RUN_PREPROCESS",
    "STATE_FILE",
    "Checkpoint",
    "checkpoint_dir",
    "is_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "model_config_source",
    "partial_path",
    "replaced_path",
    "step_name",
]
