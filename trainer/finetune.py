"""Fine-tuning: a classification head on the image tower (linear probe or full), on a labelled folder.

Train/validation split by patient when file names carry one (else each file is its own patient,
which is a stratified split); per-class metrics and the confusion matrix close the run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medflip_core.checkpoint_layout import RUN_CONFIG
from medflip_core.errors import MedflipError
from medflip_core.events import DoneEvent, EventWriter, StartEvent, StepEvent
from medflip_core.metrics import evaluation_summary
from medflip_core.model.clip_model import build_model
from medflip_core.preprocess import PreprocessConfig
from trainer.batches import ImageBatches
from trainer.config import TrainConfig
from trainer.evaluate import val_subset
from trainer.precision import Precision, choose_precision, device_supports_bf16
from trainer.run_state import Progress, RunResult, RunState, write_json
from trainer.runtime import CancelFlag, start_process, tty_progress
from trainer.training_data import build_training_data


class Classifier(nn.Module):
    """The MedFLIP image tower (unmasked) followed by a linear head over its shared embedding."""

    def __init__(self, image_tower: nn.Module, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.image_tower = image_tower
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.image_tower(pixels).embedding)


def run_finetune(cfg: TrainConfig, events: EventWriter, cancel: CancelFlag) -> RunResult:
    device, ddp = start_process(cfg.device, cfg.seed, events)
    out = Path(cfg.out_dir)
    mcfg = cfg.model
    base = build_model(mcfg)
    if cfg.init_from:
        base.load_weights(cfg.init_from)
    data = build_training_data(cfg, tokenize=None)
    if len(data.class_names) < 2:
        raise MedflipError("fine-tuning needs at least two class folders")
    model = Classifier(base.image_tower, mcfg.embed_dim, len(data.class_names)).to(device)
    del base
    if cfg.finetune_mode == "linear":
        for p in model.image_tower.parameters():
            p.requires_grad_(False)
    pre = PreprocessConfig(image_size=mcfg.image_size)
    images = ImageBatches(data.train, pre, cfg.batch_size, cfg.seed, ddp.rank, ddp.world_size, cfg.num_workers)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": params, "lr": cfg.lr, "base_lr": cfg.lr}], weight_decay=cfg.weight_decay)
    precision = Precision(choose_precision(cfg.amp, device.type, device_supports_bf16(device)), device)
    class_index = {n: i for i, n in enumerate(data.class_names)}

    run = RunState(out, cfg.keep_last, ddp, events, model, optimizer)
    start_step = run.resume() if cfg.resume else 0
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_CONFIG, cfg.to_dict())
    net: nn.Module = model
    if ddp.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    progress = Progress(cfg, images.steps_per_epoch)
    events.emit(StartEvent(job="finetune", config=cfg.to_dict(), device=str(device), world_size=ddp.world_size,
                           n_train=len(data.train), n_val=len(data.val), classes=data.class_names,
                           steps_per_epoch=progress.steps_per_epoch, total_steps=progress.total_steps,
                           start_step=start_step, resumed_from=run.resumed_from, budget_s=progress.budget_s,
                           amp=precision.mode, grad_scaler=precision.scaler is not None))
    step = start_step
    ckpt_state = {"config": cfg.to_dict(), "model_config": mcfg.to_dict(), "classes": data.class_names,
                  "preprocess": pre.to_dict()}
    loss_fn = nn.CrossEntropyLoss()
    while run.begin_step(step, progress, cancel.requested, optimizer, cfg.warmup_steps, cfg.schedule):
        t_step = time.monotonic()
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(cfg.grad_accum):
            sub = step * cfg.grad_accum + micro
            epoch, pixels, _, used = images.batch(sub)
            images.prefetch(sub + 1)
            targets = torch.tensor([class_index[images.records[i].class_name] for i in used], device=device)
            if cfg.finetune_mode == "linear":
                model.image_tower.eval()
            with precision.autocast():
                loss = loss_fn(net(pixels.to(device)).float(), targets) / cfg.grad_accum
            run.check_loss(loss, step + 1)
            precision.backward(loss)
            total += float(loss.detach())
        outcome = precision.step(optimizer, params, float("inf"), run.gradients_finite)
        run.note_skipped(outcome.finite, step + 1, precision.mode)
        step += 1
        step_s = time.monotonic() - t_step
        samples_per_s = cfg.batch_size * cfg.grad_accum * ddp.world_size / step_s
        eta = progress.eta_s(step, run.elapsed(), step_s)
        events.emit(StepEvent(step=step, epoch=epoch, loss=total, lr=optimizer.param_groups[0]["lr"],
                              samples_per_s=samples_per_s, eta_s=eta, total_steps=progress.total_steps,
                              elapsed_s=run.elapsed(), grad_norm=outcome.grad_norm,
                              skipped_images=images.skipped.count))
        if ddp.is_main:
            tty_progress(step, progress.total_steps, total, samples_per_s, eta)
        if step % cfg.checkpoint_every == 0:
            run.save(step, ckpt_state)

    metrics = None
    if ddp.is_main and data.val and not run.cancelled:
        metrics = _validate(model, data, pre, device, cfg.max_val_images)
        events.emit("eval", step=step, **metrics)
    run.save(step, ckpt_state, metrics)
    images.close()
    status = "cancelled" if run.cancelled else "completed"
    events.emit(DoneEvent(status=status, step=step, checkpoint=run.last_checkpoint, elapsed_s=run.elapsed(),
                          skipped_images=images.skipped.count, skipped_examples=images.skipped.examples,
                          reason=cancel.signal_name or None))
    if ddp.enabled:
        dist.barrier()
    return RunResult(status=status, step=step, checkpoint=run.last_checkpoint)


@torch.no_grad()
def _validate(model: Classifier, data, pre: PreprocessConfig, device, cap: int | None) -> dict:
    model.eval()
    loader = ImageBatches(data.val, pre, batch_size=1, seed=0)
    probs, truth = [], []
    for i in val_subset(len(data.val), cap):
        arr = loader.load(int(i))
        if arr is None:
            continue
        logits = model(torch.from_numpy(arr[None]).to(device))
        probs.append(torch.softmax(logits, dim=1)[0].cpu().numpy())
        truth.append(data.class_names.index(data.val[int(i)].class_name))
    model.train()
    summary = evaluation_summary(np.array(truth), np.stack(probs), data.class_names, n_boot=200)
    summary["data_set"] = "validation split (patient-disjoint) of the fine-tuning folders"
    return summary
