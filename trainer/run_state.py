"""What every job does around its loop, shared by pre-training and fine-tuning: how far the run is
(Progress), resume from the latest checkpoint, count wall-clock time across resumes, keep the best
validation metric across resumes, write checkpoints (rank 0 only) with a readable error when the disk
refuses, stop together on non-finite numbers, and the result a job returns."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from medflip_core.atomic import write_text_atomic
from medflip_core.errors import MedflipError
from medflip_core.events import CheckpointEvent, EventWriter, SkippedStepEvent
from trainer.checkpoint import latest_checkpoint, load_checkpoint_into, save_checkpoint
from trainer.config import TrainConfig
from trainer.runtime import Dist, agree, any_rank, lr_factor

# consecutive optimizer steps skipped for inf/NaN gradients before the run stops; float16's scaler
# starts high and halves its scale on every overflow, so it gets more room to settle
MAX_SKIPPED_STEPS = {"fp16": 24}
DEFAULT_MAX_SKIPPED_STEPS = 3


class NonFiniteLoss(MedflipError):
    """A NaN or inf appeared: the run stops rather than train on garbage."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"{what} became NaN or infinite at step {step}: training stopped. Lower the learning "
                         "rate or check the data; the last complete checkpoint is kept.")
        self.step = step


@dataclass
class RunResult:
    status: str  # completed | cancelled
    step: int
    checkpoint: str | None


class Progress:
    """Fraction of the run done, from optimizer steps, epochs or the wall-clock budget (whichever ends first).

    `steps_per_epoch` counts optimizer steps: with gradient accumulation over N micro-batches an epoch
    is N times fewer optimizer steps than batches.
    """

    def __init__(self, cfg: TrainConfig, batches_per_epoch: int) -> None:
        self.steps_per_epoch = max(1, batches_per_epoch // max(1, cfg.grad_accum))
        limits = []
        if cfg.max_steps is not None:
            limits.append(cfg.max_steps)
        if cfg.epochs is not None:
            limits.append(max(1, int(round(cfg.epochs * self.steps_per_epoch))))
        self.total_steps = min(limits) if limits else None
        self.budget_s = cfg.budget_minutes * 60.0 if cfg.budget_minutes is not None else None

    def fraction(self, step: int, elapsed_s: float) -> float:
        parts = []
        if self.total_steps:
            parts.append(step / self.total_steps)
        if self.budget_s:
            parts.append(elapsed_s / self.budget_s)
        return max(parts) if parts else 0.0

    def eta_s(self, step: int, elapsed_s: float, step_s: float) -> float | None:
        left = []
        if self.total_steps:
            left.append((self.total_steps - step) * step_s)
        if self.budget_s:
            left.append(self.budget_s - elapsed_s)
        return max(0.0, min(left)) if left else None


def write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


class RunState:
    def __init__(self, out: Path, keep_last: int, ddp: Dist, events: EventWriter, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, best_metric: str | None = None,
                 extra_modules: dict[str, torch.nn.Module] | None = None) -> None:
        self.out, self.keep_last, self.ddp, self.events = out, keep_last, ddp, events
        self.extra_modules = extra_modules or {}  # saved beside the model in their own files (the MIM decoder)
        self.model, self.optimizer, self.best_metric = model, optimizer, best_metric
        self.is_main = ddp.is_main
        self.start_step = 0
        self.resumed_from: str | None = None
        self.last_checkpoint: str | None = None
        self.last_saved_step: int | None = None
        self.cancelled = False
        self.best_value: float | None = None  # the best `best_metric` so far, restored on resume
        self.skipped_in_a_row = 0
        self._elapsed_before = 0.0
        self._t0 = time.monotonic()

    def resume(self) -> int:
        """Restore the latest complete checkpoint, if any; returns the step to continue from."""
        ckpt = latest_checkpoint(self.out)
        if ckpt is not None:
            state = load_checkpoint_into(ckpt, self.model, self.optimizer, self.extra_modules)
            self.start_step = int(state["step"])
            self._elapsed_before = float(state.get("elapsed_s", 0.0))
            best = state.get("best_metric_value")
            self.best_value = float(best) if isinstance(best, int | float) else None
            self.resumed_from = str(ckpt.path)
            self.last_checkpoint, self.last_saved_step = str(ckpt.path), self.start_step
        self._t0 = time.monotonic()
        return self.start_step

    def begin_step(self, step: int, progress: Progress, cancel_requested: bool, optimizer: torch.optim.Optimizer,
                   warmup_steps: int, schedule: str) -> bool:
        """Whether to run another step (all ranks agree); if so, set this step's learning rates.

        After it returns False, `cancelled` says whether a signal or the end of the schedule stopped the run.
        """
        fraction, self.cancelled = agree(progress.fraction(step, self.elapsed()), cancel_requested, self.ddp)
        if self.cancelled or fraction >= 1.0:
            return False
        factor = lr_factor(fraction, step, warmup_steps, schedule)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return True

    def elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._t0

    def check_loss(self, loss: torch.Tensor | None, step: int) -> None:
        """Stop every rank together when any rank's loss is NaN/inf (None: the loss could not be computed).

        Called before backward: a rank that raised alone would leave the others waiting in DDP's all-reduce.
        """
        bad = loss is None or not bool(torch.isfinite(loss.detach()))
        if any_rank(bad, self.ddp):
            what = f"the loss ({float(loss.detach())})" if bad and loss is not None else "the loss (on some process)"
            raise NonFiniteLoss(step, what)

    def gradients_finite(self, local_finite: bool) -> bool:
        """All ranks agree whether this step's gradients are finite (so they all step or all skip)."""
        return not any_rank(not local_finite, self.ddp)

    def note_skipped(self, finite: bool, step: int, precision_mode: str) -> None:
        """Count steps skipped for inf/NaN gradients (an event each); too many in a row stop the run."""
        if finite:
            self.skipped_in_a_row = 0
            return
        self.skipped_in_a_row += 1
        self.events.emit(SkippedStepEvent(step=step, reason="gradients held inf or NaN; the optimizer step was "
                                          "skipped on every process", in_a_row=self.skipped_in_a_row))
        if self.skipped_in_a_row >= MAX_SKIPPED_STEPS.get(precision_mode, DEFAULT_MAX_SKIPPED_STEPS):
            raise NonFiniteLoss(step, f"the gradients ({self.skipped_in_a_row} steps in a row)")

    def improves(self, metrics: dict | None) -> bool:
        """Whether these validation metrics beat the best so far (which they then become)."""
        if not self.best_metric or not metrics:
            return False
        value = metrics.get(self.best_metric)
        if not isinstance(value, int | float) or (self.best_value is not None and value <= self.best_value):
            return False
        self.best_value = float(value)
        return True

    def save(self, step: int, state: dict[str, Any], metrics: dict | None = None) -> None:
        self.last_saved_step = step
        if not self.is_main:
            return
        full = {**state, "elapsed_s": self.elapsed(), "metrics": metrics or {},
                "best_metric": self.best_metric, "best_metric_value": self.best_value}
        try:
            path = save_checkpoint(self.out, step, self.model.state_dict(), self.optimizer, full, self.keep_last,
                                   self.best_metric,
                                   {name: module.state_dict() for name, module in self.extra_modules.items()})
        except OSError as exc:
            raise MedflipError(f"could not write a checkpoint to {self.out}: {exc.strerror or exc} "
                               "(is the disk full?); the last complete checkpoint is kept.") from exc
        self.last_checkpoint = str(path)
        self.events.emit(CheckpointEvent(step=step, path=str(path), metrics=metrics or {}))
