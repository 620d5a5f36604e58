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

from medflip_core.atomic import write_text_atomic
from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter
from medflip_core.metrics import evaluation_summary
from medflip_core.model.clip_model import build_model
from medflip_core.preprocess import PreprocessConfig
from trainer.config import TrainConfig
from trainer.data import ImageBatches
from trainer.datasets import build_training_data
from trainer.evaluate import val_subset
from trainer.pretrain import NonFiniteLoss, Progress, RunResult, _json, model_config_from
from trainer.run_state import RunState
from trainer.runtime import CancelFlag, start_process, tty_progress


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
    mcfg = model_config_from(cfg)
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
    pre = PreprocessConfig(image_size=cfg.image_size)
    images = ImageBatches(data.train, pre, cfg.batch_size, cfg.seed, ddp.rank, ddp.world_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": params, "lr": cfg.lr, "base_lr": cfg.lr}], weight_decay=cfg.weight_decay)
    class_index = {n: i for i, n in enumerate(data.class_names)}

    run = RunState(out, cfg.keep_last, ddp.is_main, events, model, optimizer)
    start_step = run.resume() if cfg.resume else 0
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.json", _json(cfg.to_dict()))
    net: nn.Module = model
    if ddp.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    progress = Progress(cfg, images.steps_per_epoch)
    events.emit("start", job="finetune", config=cfg.to_dict(), device=str(device), world_size=ddp.world_size,
                n_train=len(data.train), n_val=len(data.val), classes=data.class_names,
                steps_per_epoch=images.steps_per_epoch, total_steps=progress.total_steps, start_step=start_step)
    step = start_step
    elapsed = run.elapsed
    ckpt_state = {"config": cfg.to_dict(), "model_config": mcfg.to_dict(), "classes": data.class_names,
                  "preprocess": pre.to_dict()}

    def checkpoint(metrics: dict | None = None) -> None:
        run.save(step, ckpt_state, metrics)

    loss_fn = nn.CrossEntropyLoss()
    while run.begin_step(step, progress, cancel.requested, ddp, optimizer, cfg.warmup_steps, cfg.schedule):
        t_step = time.monotonic()
        epoch, pixels, _, used = images.batch(step)
        targets = torch.tensor([class_index[images.records[i].class_name] for i in used], device=device)
        if cfg.finetune_mode == "linear":
            model.image_tower.eval()
        loss = loss_fn(net(pixels.to(device)), targets)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(step + 1, f"the loss ({loss.item()})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        step_s = time.monotonic() - t_step
        events.emit("step", step=step, epoch=epoch, loss=float(loss), lr=optimizer.param_groups[0]["lr"],
                    samples_per_s=cfg.batch_size * ddp.world_size / step_s,
                    eta_s=progress.eta_s(step, elapsed(), step_s), total_steps=progress.total_steps)
        if ddp.is_main:
            tty_progress(step, progress.total_steps, float(loss), cfg.batch_size * ddp.world_size / step_s,
                         progress.eta_s(step, elapsed(), step_s))
        if step % cfg.checkpoint_every == 0:
            checkpoint()

    metrics = None
    if ddp.is_main and data.val and not run.cancelled:
        metrics = _validate(model, data, pre, device, cfg.max_val_images)
        events.emit("eval", step=step, **metrics)
    checkpoint(metrics)
    status = "cancelled" if run.cancelled else "completed"
    events.emit("done", status=status, cancelled=run.cancelled, step=step, checkpoint=run.last_checkpoint,
                elapsed_s=elapsed(), skipped_images=images.skipped.count)
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
