"""Checkpoints: safetensors weights + JSON state, in a folder that appears only when complete.

Layout: OUT/checkpoints/step-00000120/{model.safetensors, optimizer.safetensors, state.json}.
A folder is written as .step-00000120.partial and renamed when every file is on disk, so a run killed
mid-write (kill -9 included) leaves either a complete checkpoint or none. Keeps the last N plus the best.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medflip_core.atomic import fsync_dir
from medflip_core.errors import MedflipError

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
    return Path(out_dir) / "checkpoints"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and plain JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    out_dir: str | Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep_last: int = 2,
    best_metric: str | None = None,
) -> Path:
    """Write a complete checkpoint atomically and prune old ones. Raises OSError (e.g. disk full)."""
    root = checkpoint_dir(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    partial = root / f".step-{step:08d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(partial / MODEL_FILE))
        opt_tensors, opt_meta = _optimizer_tensors(optimizer)
        save_file(opt_tensors, str(partial / OPTIM_FILE))
        rng = torch.get_rng_state()
        full_state = {**state, "step": step, "optimizer": opt_meta, "torch_rng": rng.tolist()}
        with open(partial / STATE_FILE, "w", encoding="utf-8") as fh:
            json.dump(full_state, fh)
        for name in (MODEL_FILE, OPTIM_FILE, STATE_FILE):
            with open(partial / name, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        fsync_dir(root)
    except SafetensorError as exc:  # safetensors reports I/O failures (ENOSPC, EFBIG) as its own type
        shutil.rmtree(partial, ignore_errors=True)
        raise OSError(f"writing the checkpoint failed: {exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _prune(root, keep_last, best_metric)
    return final


def list_checkpoints(out_dir: str | Path) -> list[Checkpoint]:
    """Complete checkpoints, oldest first. Incomplete (.partial) folders are ignored."""
    root = checkpoint_dir(out_dir)
    found: list[Checkpoint] = []
    if not root.is_dir():
        return found
    for path in sorted(root.glob("step-*")):
        state_file = path / STATE_FILE
        if not (state_file.is_file() and (path / MODEL_FILE).is_file()):
            continue
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except ValueError:
            continue
        found.append(Checkpoint(path=path, step=int(state["step"]), state=state))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(out_dir: str | Path) -> Checkpoint | None:
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def _prune(root: Path, keep_last: int, best_metric: str | None) -> None:
    found = list_checkpoints(root.parent)
    keep = {c.path for c in found[-max(1, keep_last):]}
    if best_metric:
        scored = [c for c in found if isinstance(c.state.get("metrics", {}).get(best_metric), int | float)]
        if scored:
            keep.add(max(scored, key=lambda c: c.state["metrics"][best_metric]).path)
    for c in found:
        if c.path not in keep:
            shutil.rmtree(c.path, ignore_errors=True)


def load_checkpoint_into(
    ckpt: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore weights (and optimizer, RNG) from a checkpoint; returns its state dict."""
    try:
        weights = load_file(str(ckpt.model_file))
        model.load_state_dict(weights, strict=True)
        if optimizer is not None:
            _restore_optimizer(optimizer, load_file(str(ckpt.path / OPTIM_FILE)), ckpt.state["optimizer"])
    except (OSError, RuntimeError, KeyError) as exc:
        raise MedflipError(f"cannot restore checkpoint {ckpt.path}: {exc}") from exc
    torch.set_rng_state(torch.tensor(ckpt.state["torch_rng"], dtype=torch.uint8))
    return ckpt.state
