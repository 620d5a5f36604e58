"""The pre-training loop: unpaired (images + labelled sentences, the method's own) or paired (CSV)."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from medflip_core.atomic import write_text_atomic
from medflip_core.errors import MedflipError
from medflip_core.events import EventWriter
from medflip_core.model.clip_model import MedFlipModel, build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.image_tower import mask_for_batch
from medflip_core.model.losses import compute_loss
from medflip_core.preprocess import PreprocessConfig
from trainer.config import TrainConfig
from trainer.data import ImageBatches, SentencePool
from trainer.datasets import TrainingData, build_training_data
from trainer.evaluate import zero_shot_eval
from trainer.precision import Precision, choose_precision, device_supports_bf16
from trainer.run_state import RunState
from trainer.runtime import CancelFlag, Dist, start_process, tty_progress

log = logging.getLogger(__name__)


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


def model_config_from(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(
        vision=cfg.vision,
        image_size=cfg.image_size,
        embed_dim=cfg.embed_dim,
        text_model=cfg.text_model,
        max_text_tokens=cfg.max_text_tokens,
    )


def build_optimizer(model: MedFlipModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; the pretrained text encoder gets its own (small) learning rate; no decay on norms/biases."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    text_encoder_ids = {id(p) for p in model.text_tower.encoder.parameters()}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = cfg.text_lr if id(param) in text_encoder_ids else cfg.lr
        no_decay = param.ndim < 2 or "pos_embed" in name or "cls_token" in name or "logit_scale" in name
        groups.setdefault((lr, 0.0 if no_decay else cfg.weight_decay), []).append(param)
    param_groups = [
        {"params": params, "lr": lr, "base_lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()
    ]
    return torch.optim.AdamW(param_groups, betas=(0.9, 0.98), eps=1e-6)


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Progress:
    """Fraction of the run done, from steps, epochs or the wall-clock budget (whichever ends first)."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int) -> None:
        limits = []
        if cfg.max_steps is not None:
            limits.append(cfg.max_steps)
        if cfg.epochs is not None:
            limits.append(max(1, int(round(cfg.epochs * steps_per_epoch))))
        self.total_steps = min(limits) if limits else None
        self.budget_s = cfg.budget_minutes * 60.0 if cfg.budget_minutes is not None else None

    def fraction(self, step: int, elapsed_s: float) -> float:
        parts = []
        if self.total_steps:
            parts.append(step / self.total_steps)
        if self.budget_s:
            parts.append(elapsed_s / self.budget_s)
        return max(parts) if parts else 0.0

    def finished(self, step: int, elapsed_s: float) -> bool:
        return self.fraction(step, elapsed_s) >= 1.0

    def eta_s(self, step: int, elapsed_s: float, step_s: float) -> float | None:
        left = []
        if self.total_steps:
            left.append((self.total_steps - step) * step_s)
        if self.budget_s:
            left.append(self.budget_s - elapsed_s)
        return max(0.0, min(left)) if left else None


def run_pretrain(cfg: TrainConfig, events: EventWriter, cancel: CancelFlag) -> RunResult:
    device, ddp = start_process(cfg.device, cfg.seed, events)
    out = Path(cfg.out_dir)

    mcfg = model_config_from(cfg)
    model = build_model(mcfg).to(device)
    model.text_tower.set_trainable(cfg.text_train)
    if cfg.init_from:
        model.load_weights(cfg.init_from)
    pre = PreprocessConfig(image_size=cfg.image_size)
    data: TrainingData = build_training_data(cfg, tokenize=model.text_tower.tokenize)
    images = ImageBatches(data.train, pre, cfg.batch_size, cfg.seed, ddp.rank, ddp.world_size)
    sentences: SentencePool | None = data.sentences
    optimizer = build_optimizer(model, cfg)

    run = RunState(out, cfg.keep_last, ddp.is_main, events, model, optimizer, best_metric="val_auc")
    start_step = run.resume() if cfg.resume else 0
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.json", _json(cfg.to_dict()))
        write_text_atomic(out / "model_config.json", _json(mcfg.to_dict()))
        write_text_atomic(out / "preprocess.json", _json(pre.to_dict()))

    net: torch.nn.Module = model
    if ddp.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    precision = Precision(choose_precision(cfg.amp, device.type, device_supports_bf16(device)), device)
    progress = Progress(cfg, images.steps_per_epoch)
    events.emit(
        "start",
        job="pretrain",
        config=cfg.to_dict(),
        device=str(device),
        world_size=ddp.world_size,
        n_train=len(data.train),
        n_val=len(data.val),
        n_sentences=len(sentences) if sentences is not None else len(data.train),
        steps_per_epoch=images.steps_per_epoch,
        total_steps=progress.total_steps,
        budget_s=progress.budget_s,
        start_step=start_step,
        resumed_from=run.resumed_from,
        **precision.describe(),
    )

    step = start_step
    best_auc = -1.0
    loss_options = {"beta": cfg.beta, "svd_reading": cfg.svd_reading,
                    "svd_iters": cfg.svd_power_iters or None} if cfg.loss == "medflip" else {}
    elapsed = run.elapsed
    ckpt_state = {"config": cfg.to_dict(), "model_config": mcfg.to_dict(), "preprocess": pre.to_dict()}

    def checkpoint(metrics: dict | None = None) -> None:
        run.save(step, {**ckpt_state, "skipped_images": images.skipped.count}, metrics)

    while run.begin_step(step, progress, cancel.requested, ddp, optimizer, cfg.warmup_steps, cfg.schedule):
        t_step = time.monotonic()
        optimizer.zero_grad(set_to_none=True)
        parts: dict[str, float] = {}
        sig_pos, sig_neg = [], []
        for micro in range(cfg.grad_accum):
            sub = step * cfg.grad_accum + micro
            epoch, pixels, img_labels, used = images.batch(sub)
            if data.paired:  # each image with its own report; the labeler's labels serve both
                tokens = model.text_tower.tokenize([images.records[i].text for i in used])
                txt_labels = img_labels
            elif cfg.loss == "infonce":  # needs pairs: one label-matched sentence per image
                tokens, txt_labels = sentences.matched_batch(sub, img_labels.numpy(), cfg.seed, ddp.rank)
            else:
                tokens, txt_labels = sentences.batch(sub, cfg.batch_size, cfg.seed, ddp.rank)
            keep = mask_for_batch(cfg.batch_size, model.image_tower.num_patches, cfg.mask_ratio,
                                  np.random.default_rng([cfg.seed, sub, ddp.rank, 3]))
            pixels = pixels.to(device, non_blocking=True)
            img_labels, txt_labels = img_labels.to(device), txt_labels.to(device)
            tokens = {k: v.to(device) for k, v in tokens.items()}
            try:
                with precision.autocast():
                    img_out, txt_out = net(pixels, tokens["input_ids"], tokens["attention_mask"],
                                           keep.to(device) if keep is not None else None)
                    result = compute_loss(cfg.loss, img_out, txt_out, img_labels, txt_labels,
                                          model.logit_scale, **loss_options)
            except torch.linalg.LinAlgError as exc:  # the SVD of non-finite similarities
                raise NonFiniteLoss(step + 1, "the embeddings") from exc
            loss = result.total / cfg.grad_accum
            if not torch.isfinite(loss):
                raise NonFiniteLoss(step + 1, f"the loss ({loss.item()})")
            precision.backward(loss)
            for name in ("total", "contrastive", "svd"):
                value = getattr(result, name)
                parts[name] = parts.get(name, 0.0) + float(value.detach()) / cfg.grad_accum
            if result.sigma1_pos is not None:
                sig_pos.append(result.sigma1_pos)
            if result.sigma1_neg is not None:
                sig_neg.append(result.sigma1_neg)
        precision.step(optimizer, model.parameters(), 1.0)
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, float(np.log(100.0)))
        step += 1
        step_s = time.monotonic() - t_step
        if step % cfg.log_every == 0:
            events.emit(
                "step", step=step, epoch=epoch, loss=parts["total"], contrastive=parts["contrastive"],
                svd=parts["svd"], sigma1=float(np.mean(sig_pos)) if sig_pos else None,
                sigma1_pos=float(np.mean(sig_pos)) if sig_pos else None,
                sigma1_neg=float(np.mean(sig_neg)) if sig_neg else None,
                lr=optimizer.param_groups[0]["lr"], temperature=float(1.0 / model.logit_scale.detach().exp()),
                samples_per_s=cfg.batch_size * cfg.grad_accum * ddp.world_size / step_s,
                eta_s=progress.eta_s(step, elapsed(), step_s), elapsed_s=elapsed(),
                total_steps=progress.total_steps, skipped_images=images.skipped.count,
            )
        if ddp.is_main:
            tty_progress(step, progress.total_steps, parts["total"], cfg.batch_size * cfg.grad_accum * ddp.world_size
                         / step_s, progress.eta_s(step, elapsed(), step_s))
        metrics = None
        if ddp.is_main and cfg.eval_every and step % cfg.eval_every == 0 and data.val:
            metrics = zero_shot_eval(model, data, pre, device, cfg.max_val_images)
            events.emit("eval", step=step, **metrics)
        if step % cfg.checkpoint_every == 0 or (metrics and metrics.get("val_auc", -1) > best_auc):
            if metrics:
                best_auc = max(best_auc, metrics.get("val_auc") or -1.0)
            checkpoint(metrics)

    status = "cancelled" if run.cancelled else "completed"
    metrics = None
    evaluated_now = bool(cfg.eval_every) and step % cfg.eval_every == 0
    if status == "completed" and ddp.is_main and data.val and cfg.eval_every and not evaluated_now:
        metrics = zero_shot_eval(model, data, pre, device, cfg.max_val_images)
        events.emit("eval", step=step, **metrics)
    if run.last_checkpoint is None or not run.last_checkpoint.endswith(f"{step:08d}"):
        checkpoint(metrics)
    digests = _gather_digests(model, ddp)
    events.emit("done", status=status, cancelled=status == "cancelled", step=step, checkpoint=run.last_checkpoint,
                elapsed_s=elapsed(), skipped_images=images.skipped.count,
                skipped_examples=images.skipped.examples, weight_digests=digests,
                reason=cancel.signal_name or None)
    if ddp.enabled:
        dist.barrier()
    return RunResult(status=status, step=step, checkpoint=run.last_checkpoint)


def _gather_digests(model: torch.nn.Module, ddp: Dist) -> list[str]:
    digest = weights_digest(model)
    if not ddp.enabled:
        return [digest]
    gathered: list[str | None] = [None] * ddp.world_size
    dist.all_gather_object(gathered, digest)
    return [g or "" for g in gathered]


def _json(data: dict) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=True)
