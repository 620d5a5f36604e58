"""Writing and restoring checkpoints: safetensors weights + JSON state, in a folder that appears only when
complete (the layout and how to find the latest: medflip_core/bundles/checkpoint_layout.py).

A folder is written as .step-00000120.partial and renamed when every file is on disk, so a run killed
mid-write (kill -9 included) leaves either a complete checkpoint or none. Replacing a step's checkpoint
never deletes first: the old folder is renamed aside, the new one renamed in, then the old one removed.
Keeps the last N plus the best. Random-number states: torch's CPU generator and, when CUDA is in use,
every GPU's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medflip_core.atomic import fsync_dir
from medflip_core.bundles.checkpoint_layout import (
    MODEL_FILE,
    OPTIM_FILE,
    STATE_FILE,
    Checkpoint,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    partial_path,
    replaced_path,
    step_name,
)
from medflip_core.errors import MedflipError


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
    extra_files: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a complete checkpoint atomically and prune old ones. Raises OSError (e.g. disk full).

    `extra_files`: more safetensors files in the folder, by name (training-only modules such as the MIM decoder,
    kept apart from model.safetensors so that exports and `load_weights` never see them)."""
    root = checkpoint_dir(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_name(step)
    partial = partial_path(root, step)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(partial / MODEL_FILE))
        opt_tensors, opt_meta = _optimizer_tensors(optimizer)
        save_file(opt_tensors, str(partial / OPTIM_FILE))
        for name, extra in (extra_files or {}).items():
            save_file({k: v.detach().cpu().contiguous() for k, v in extra.items()}, str(partial / name))
        full_state = {**state, "step": step, "optimizer": opt_meta, **_rng_states()}
        with open(partial / STATE_FILE, "w", encoding="utf-8") as fh:
            json.dump(full_state, fh)
        for name in (MODEL_FILE, OPTIM_FILE, STATE_FILE, *(extra_files or {})):
            with open(partial / name, "rb") as fh:
                os.fsync(fh.fileno())
        _swap_in(partial, final, replaced_path(root, step))
        fsync_dir(root)
    except SafetensorError as exc:  # safetensors reports I/O failures (ENOSPC, EFBIG) as its own type
        shutil.rmtree(partial, ignore_errors=True)
        raise OSError(f"writing the checkpoint failed: {exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _prune(root, keep_last, best_metric)
    return final


def _swap_in(partial: Path, final: Path, aside: Path) -> None:
    """Put a complete folder in place of `final` without a moment where no complete checkpoint exists:
    the old one is renamed aside (and restored by list_checkpoints if a kill comes now), never deleted first."""
    if final.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
        os.replace(partial, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(partial, final)


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch_rng": torch.get_rng_state().tolist()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda_rng"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return states


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
    cuda = state.get("cuda_rng")
    if cuda and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            return  # another GPU count: the GPUs' streams cannot be matched one to one
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in cuda])


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
    ckpt: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
    extra_modules: dict[str, torch.nn.Module] | None = None,
) -> dict[str, Any]:
    """Restore weights (and optimizer, RNG) from a checkpoint; returns its state dict. `extra_modules`: modules
    saved in their own file of the folder (save_checkpoint's `extra_files`), by file name."""
    for name in extra_modules or {}:
        if not (ckpt.path / name).is_file():
            raise MedflipError(f"cannot restore checkpoint {ckpt.path}: it has no {name} (it was written by a run "
                               "with other options, e.g. another --mim-weight; resume with the run's own config)")
    try:
        weights = load_file(str(ckpt.model_file))
        model.load_state_dict(weights, strict=True)
        for name, module in (extra_modules or {}).items():
            module.load_state_dict(load_file(str(ckpt.path / name)), strict=True)
        if optimizer is not None:
            _restore_optimizer(optimizer, load_file(str(ckpt.path / OPTIM_FILE)), ckpt.state["optimizer"])
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise MedflipError(f"cannot restore checkpoint {ckpt.path}: {exc}") from exc
    _restore_rng(ckpt.state)
    return ckpt.state


__all__ = ["Checkpoint", "checkpoint_dir", "latest_checkpoint", "list_checkpoints", "load_checkpoint_into",
           "save_checkpoint"]
