"""What every job does around its loop: resume from the latest checkpoint, count wall-clock time across
resumes, and write checkpoints (rank 0 only) with a readable error when the disk refuses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter
from trainer.checkpoint import latest_checkpoint, load_checkpoint_into, save_checkpoint
from trainer.runtime import agree, lr_factor


class RunState:
    def __init__(self, out: Path, keep_last: int, is_main: bool, events: EventWriter, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, best_metric: str | None = None) -> None:
        self.out, self.keep_last, self.is_main, self.events = out, keep_last, is_main, events
        self.model, self.optimizer, self.best_metric = model, optimizer, best_metric
        self.start_step = 0
        self.resumed_from: str | None = None
        self.last_checkpoint: str | None = None
        self.cancelled = False
        self._elapsed_before = 0.0
        self._t0 = time.monotonic()

    def resume(self) -> int:
        """Restore the latest complete checkpoint, if any; returns the step to continue from."""
        ckpt = latest_checkpoint(self.out)
        if ckpt is not None:
            state = load_checkpoint_into(ckpt, self.model, self.optimizer)
            self.start_step = int(state["step"])
            self._elapsed_before = float(state.get("elapsed_s", 0.0))
            self.resumed_from = str(ckpt.path)
        self._t0 = time.monotonic()
        return self.start_step

    def begin_step(self, step: int, progress, cancel_requested: bool, ddp, optimizer: torch.optim.Optimizer,
                   warmup_steps: int, schedule: str) -> bool:
        """Whether to run another step (all ranks agree); if so, set this step's learning rates.

        After it returns False, `cancelled` says whether a signal or the end of the schedule stopped the run.
        """
        fraction, self.cancelled = agree(progress.fraction(step, self.elapsed()), cancel_requested, ddp)
        if self.cancelled or fraction >= 1.0:
            return False
        factor = lr_factor(fraction, step, warmup_steps, schedule)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return True

    def elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._t0

    def save(self, step: int, state: dict[str, Any], metrics: dict | None = None) -> None:
        if not self.is_main:
            return
        full = {**state, "elapsed_s": self.elapsed(), "metrics": metrics or {}}
        try:
            path = save_checkpoint(self.out, step, self.model.state_dict(), self.optimizer, full, self.keep_last,
                                   self.best_metric)
        except OSError as exc:
            raise MedflipError(f"could not write a checkpoint to {self.out}: {exc.strerror or exc} "
                               "(is the disk full?); the last complete checkpoint is kept.") from exc
        self.last_checkpoint = str(path)
        self.events.emit("checkpoint", step=step, path=str(path), metrics=metrics or {})
