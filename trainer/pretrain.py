"""The pre-training loop: unpaired (images + labelled sentences, the method's own) or paired (CSV).

`run_pretrain` = `setup_pretrain` (model, data, optimizer, resume), then `train_step` per optimizer step
(gradient accumulation over micro-batches), `after_step` (events, validation, checkpoints) and
`finish_pretrain` (last validation, last checkpoint, the `done` event).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from medflip_core.bundles.checkpoint_layout import RUN_CONFIG, RUN_MODEL_CONFIG, RUN_PREPROCESS
from medflip_core.events import DoneEvent, EvalEvent, EventWriter, StartEvent, StepEvent
from medflip_core.imaging.augment import AugmentConfig
from medflip_core.imaging.preprocess import PreprocessConfig
from medflip_core.model.clip_model import MedFlipModel, build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.image_tower import mask_for_batch
from medflip_core.model.instance_head import INSTANCE_FILE, InstanceHead
from medflip_core.model.losses import compute_loss
from medflip_core.model.mask_scores import mask_scores
from medflip_core.model.mim_decoder import DECODER_FILE, MimDecoder
from medflip_core.model.optim import adamw
from trainer.batches import ImageBatches, SentencePool
from trainer.config import TrainConfig
from trainer.evaluate import zero_shot_eval
from trainer.image_cache import DecodedImageCache, split_budget
from trainer.mim import (
    MimNet,
    check_resume,
    decoder_param_groups,
    first_rows,
    index_unlabelled,
    make_decoder,
    make_instance_head,
)
from trainer.precision import Precision, choose_precision, device_supports_bf16
from trainer.run_state import Progress, RunResult, RunState, write_json
from trainer.runtime import CancelFlag, Dist, gather_digests, start_process, tty_progress
from trainer.text_cache import FrozenTextCache
from trainer.training_data import TrainingData, build_training_data, make_sampler

log = logging.getLogger(__name__)


def build_optimizer(model: MedFlipModel, cfg: TrainConfig, device: torch.device,
                    decoder: MimDecoder | None = None, instance: InstanceHead | None = None) -> torch.optim.Optimizer:
    """AdamW; the pretrained text encoder gets its own (small) learning rate; no decay on norms/biases; the MIM
    decoder's parameters (if any) after the model's, then the instance head's, at the image tower's rate."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    text_encoder_ids = {id(p) for p in model.text_tower.encoder.parameters()}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = cfg.text_lr if id(param) in text_encoder_ids else cfg.lr
        no_decay = param.ndim < 2 or "pos_embed" in name or "cls_token" in name or "logit_scale" in name
        groups.setdefault((lr, 0.0 if no_decay else cfg.weight_decay), []).append(param)
    if decoder is not None:
        for key, params in decoder_param_groups(decoder, cfg.lr, cfg.weight_decay).items():
            groups.setdefault(key, []).extend(params)
    for param in instance.parameters() if instance is not None else ():
        groups.setdefault((cfg.lr, 0.0 if param.ndim < 2 else cfg.weight_decay), []).append(param)
    param_groups = [
        {"params": params, "lr": lr, "base_lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()
    ]
    return adamw(param_groups, device, betas=(0.9, 0.98), eps=1e-6)


@dataclass
class Pretraining:
    """Everything a pre-training step needs, built once by `setup_pretrain`."""

    cfg: TrainConfig
    mcfg: ModelConfig
    pre: PreprocessConfig
    device: torch.device
    ddp: Dist
    model: MedFlipModel
    net: torch.nn.Module  # the model, or its DDP wrapper
    data: TrainingData
    images: ImageBatches
    sentences: SentencePool | None
    optimizer: torch.optim.Optimizer
    precision: Precision
    run: RunState
    progress: Progress
    events: EventWriter
    text_cache: FrozenTextCache | None
    loss_options: dict = field(default_factory=dict)
    image_cache: DecodedImageCache | None = None  # training images, decoded once
    val_cache: DecodedImageCache | None = None  # validation images, decoded once for every evaluation
    trainable: list[torch.nn.Parameter] = field(default_factory=list)  # what clipping reads, in model order
    decoder: MimDecoder | None = None  # masked image modelling (--mim-weight > 0); training only
    unlabelled: ImageBatches | None = None  # images without labels: reconstruction only (--unlabelled)
    unlabelled_left_out: int = 0  # --unlabelled files of validation patients, left out


@dataclass
class StepStats:
    epoch: int
    parts: dict[str, float]
    sigma1_pos: float | None
    sigma1_neg: float | None
    seconds: float
    grad_norm: float
    mask_seconds: float = 0.0  # scoring the patches and drawing the mask (the mask strategy's cost)
    n_unlabelled: int = 0  # images without labels in the step (all micro-batches)


def setup_pretrain(cfg: TrainConfig, events: EventWriter) -> Pretraining:
    device, ddp = start_process(cfg.device, cfg.seed, events)
    out = Path(cfg.out_dir)
    mcfg = cfg.model
    model = build_model(mcfg).to(device)
    model.text_tower.set_trainable(cfg.text_train)
    if cfg.clip_weight == 0:  # reconstruction only: what the image-text loss trains gets no gradient, so freeze it
        for param in [*model.text_tower.parameters(), *model.image_tower.proj.parameters(), model.logit_scale]:
            param.requires_grad_(False)
    if cfg.init_from:
        model.load_weights(cfg.init_from, resample_positions=True)
    pre = PreprocessConfig(image_size=mcfg.image_size)
    data = build_training_data(cfg, tokenize=model.text_tower.tokenize)
    n_val = len(data.val) if cfg.max_val_images is None else min(len(data.val), cfg.max_val_images)
    train_mb, val_mb = split_budget(cfg.image_cache_mb, n_val, mcfg.image_size)
    image_cache = DecodedImageCache(train_mb) if cfg.image_cache_mb > 0 else None
    val_cache = DecodedImageCache(val_mb) if cfg.image_cache_mb > 0 else None
    images = ImageBatches(data.train, pre, cfg.batch_size, cfg.seed, ddp.rank, ddp.world_size, cfg.num_workers,
                          sampler=make_sampler(cfg, data, cfg.batch_size),
                          augment=AugmentConfig() if cfg.augment else None, cache=image_cache,
                          decode_in=cfg.decode_in)
    decoder = make_decoder(cfg, model)
    check_resume(cfg, decoder)
    if decoder is not None:
        decoder = decoder.to(device)
    instance = make_instance_head(cfg, model)
    if instance is not None:
        instance = instance.to(device)
    unlabelled, left_out = None, 0
    if cfg.unlabelled:
        records, left_out = index_unlabelled(cfg, data.val)
        unlabelled = ImageBatches(records, pre, cfg.unlabelled_batch_size or cfg.batch_size, cfg.seed, ddp.rank,
                                  ddp.world_size, cfg.num_workers, augment=AugmentConfig() if cfg.augment else None,
                                  cache=image_cache, cache_name="unlabelled", decode_in=cfg.decode_in)
    optimizer = build_optimizer(model, cfg, device, decoder, instance)
    extra = {name: m for name, m in ((DECODER_FILE, decoder), (INSTANCE_FILE, instance)) if m is not None}
    run = RunState(out, cfg.keep_last, ddp, events, model, optimizer, best_metric="val_auc",
                   extra_modules=extra or None)
    if cfg.resume:
        run.resume()
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_CONFIG, cfg.to_dict())
        write_json(out / RUN_MODEL_CONFIG, mcfg.to_dict())
        write_json(out / RUN_PREPROCESS, pre.to_dict())
    net: torch.nn.Module = model if decoder is None else MimNet(model, decoder, instance, cfg.instance_temperature)
    if ddp.enabled:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    loss_options: dict = {}
    if cfg.loss == "medflip":
        loss_options = {"beta": cfg.beta, "svd_reading": cfg.svd_reading, "svd_iters": cfg.svd_power_iters or None}
    if data.paired and cfg.loss in ("medflip", "medclip"):
        loss_options["identity_weight"] = cfg.pair_identity_weight
    cache = None
    # frozen: the whole encoder's output; reconstruction only (clip weight 0) has no text pass to cache
    if cfg.text_train in ("partial", "frozen") and cfg.text_cache_mb > 0 and cfg.clip_weight > 0:
        cache = FrozenTextCache(model.text_tower, cfg.text_cache_mb)
        if data.sentences is not None:  # the whole pool at once when it fits: no misses during training
            cache.warm(list(range(len(data.sentences))), data.sentences.tokens)
    precision = Precision(choose_precision(cfg.amp, device.type, device_supports_bf16(device)), device)
    trainable = [q for q in model.parameters() if q.requires_grad]
    trainable += list(decoder.parameters()) if decoder is not None else []
    trainable += list(instance.parameters()) if instance is not None else []
    return Pretraining(cfg, mcfg, pre, device, ddp, model, net, data, images, data.sentences, optimizer, precision,
                       run, Progress(cfg, images.steps_per_epoch), events, cache, loss_options, image_cache,
                       val_cache, trainable, decoder, unlabelled, left_out)


def emit_start(p: Pretraining) -> None:
    p.events.emit(StartEvent(
        job="pretrain", config=p.cfg.to_dict(), device=str(p.device), world_size=p.ddp.world_size,
        n_train=len(p.data.train), n_val=len(p.data.val),
        n_sentences=len(p.sentences) if p.sentences is not None else len(p.data.train),
        steps_per_epoch=p.progress.steps_per_epoch, total_steps=p.progress.total_steps,
        budget_s=p.progress.budget_s, start_step=p.run.start_step, resumed_from=p.run.resumed_from,
        amp=p.precision.mode, grad_scaler=p.precision.scaler is not None,
        text_cache_mb=p.cfg.text_cache_mb if p.text_cache is not None else 0,
        image_cache_mb=p.cfg.image_cache_mb if p.image_cache is not None else 0,
    ), **({"mim_weight": p.cfg.mim_weight, "n_unlabelled": len(p.unlabelled.records) if p.unlabelled else 0,
           "unlabelled_left_out": p.unlabelled_left_out} if p.decoder is not None else {}))


def batch_mask(p: Pretraining, sub: int, pixels: torch.Tensor, tokens: dict,
               frozen: torch.Tensor | None = None) -> torch.Tensor | None:
    """The image mask of micro-batch `sub`: kept patch indices (B, K), or None when nothing is masked.

    The one place the training step masks; a pure function of (seed, micro-batch, rank, weights, batch) so
    a resumed run masks exactly as the killed one would have. `--mask-strategy` integrity/attention score
    the patches first (medflip_core.model.mask_scores; attention: a no-gradient pass of the current model).
    """
    cfg = p.cfg
    rng = np.random.default_rng([cfg.seed, sub, p.ddp.rank, 3])
    scores = None
    if cfg.mask_ratio > 0:
        scores = mask_scores(p.model, cfg.mask_strategy, pixels, tokens["input_ids"], tokens["attention_mask"],
                             frozen)
    return mask_for_batch(pixels.shape[0], p.model.image_tower.num_patches, cfg.mask_ratio, rng,
                          cfg.mask_strategy, scores, cfg.mask_guided_share)


def _texts(p: Pretraining, sub: int, img_labels: torch.Tensor, used: list[int]):
    """(tokens, text labels, cache keys) of micro-batch `sub`."""
    cfg = p.cfg
    if p.data.paired:  # each image with its own report; the labeler's labels serve both
        tokens = p.model.text_tower.tokenize([p.images.records[i].text for i in used])
        return tokens, img_labels, [("report", i) for i in used]
    if cfg.loss == "infonce":  # needs pairs: one label-matched sentence per image
        drawn = p.sentences.matched_batch(sub, img_labels.numpy(), cfg.seed, p.ddp.rank)
    else:
        drawn = p.sentences.batch(sub, cfg.batch_size, cfg.seed, p.ddp.rank)
    return drawn.tokens, drawn.labels, drawn.ids


def train_step(p: Pretraining, step: int) -> StepStats:
    """One optimizer step over `grad_accum` micro-batches; raises NonFiniteLoss on every rank together."""
    cfg, device = p.cfg, p.device
    t_step = time.monotonic()
    p.optimizer.zero_grad(set_to_none=True)
    parts: dict[str, float] = {}
    sig_pos, sig_neg = [], []
    epoch, mask_s, n_unlabelled = 0, 0.0, 0
    for micro in range(cfg.grad_accum):
        sub = step * cfg.grad_accum + micro
        epoch, pixels, img_labels, used = p.images.batch(sub)
        p.images.prefetch(sub + 1)
        if cfg.clip_weight == 0:  # reconstruction only: no sentences, no text pass
            parts_mim = _reconstruction_micro_step(p, sub, pixels)
            n_unlabelled += parts_mim.pop("n_unlabelled")
            mask_s += parts_mim.pop("mask_s")
            for name, value in parts_mim.items():
                parts[name] = parts.get(name, 0.0) + value / cfg.grad_accum
            continue
        tokens, txt_labels, keys = _texts(p, sub, img_labels, used)
        n_labelled = pixels.shape[0]
        pixels, extra = _with_unlabelled(p, sub, pixels)
        n_unlabelled += extra
        two_views = cfg.instance_weight > 0
        if two_views:  # every film again, under masks of its own (the instance term): one encoder pass for both
            pixels = torch.cat([pixels, pixels])
        pixels = pixels.to(device, non_blocking=True)
        img_labels, txt_labels = img_labels.to(device), txt_labels.to(device)
        tokens = {k: v.to(device) for k, v in tokens.items()}
        frozen = p.text_cache.states(keys, tokens) if p.text_cache is not None else None
        t_mask = time.monotonic()
        keep = batch_mask(p, sub, pixels, tokens, frozen)
        mask_s += time.monotonic() - t_mask
        loss = result = mim = inst = None
        try:
            with p.precision.autocast():
                if p.decoder is None:
                    img_out, txt_out = p.net(pixels, tokens["input_ids"], tokens["attention_mask"],
                                             keep.to(device) if keep is not None else None, frozen)
                else:  # one masked pass: the labelled images feed both losses, the unlabelled ones reconstruction
                    img_out, txt_out, mim, inst = p.net(pixels, tokens["input_ids"], tokens["attention_mask"],
                                                        keep.to(device), frozen, two_views)
                    img_out = first_rows(img_out, n_labelled)
                result = compute_loss(cfg.loss, img_out, txt_out, img_labels, txt_labels,
                                      p.model.logit_scale, **p.loss_options)
            total = cfg.clip_weight * result.total if mim is None else (cfg.clip_weight * result.total
                                                                         + cfg.mim_weight * mim.float())
            if inst is not None:
                total = total + cfg.instance_weight * inst
            loss = total / cfg.grad_accum
        except torch.linalg.LinAlgError:  # the full SVD of non-finite similarities
            loss = None
        p.run.check_loss(loss, step + 1)
        p.precision.backward(loss)
        for name in ("contrastive", "svd"):
            parts[name] = parts.get(name, 0.0) + float(getattr(result, name).detach()) / cfg.grad_accum
        parts["total"] = parts.get("total", 0.0) + cfg.clip_weight * float(result.total.detach()) / cfg.grad_accum
        if mim is not None:
            parts["mim"] = parts.get("mim", 0.0) + float(mim.detach()) / cfg.grad_accum
            parts["total"] += cfg.mim_weight * float(mim.detach()) / cfg.grad_accum
        if inst is not None:
            parts["instance"] = parts.get("instance", 0.0) + float(inst.detach()) / cfg.grad_accum
            parts["total"] += cfg.instance_weight * float(inst.detach()) / cfg.grad_accum
        if result.sigma1_pos is not None:
            sig_pos.append(result.sigma1_pos)
        if result.sigma1_neg is not None:
            sig_neg.append(result.sigma1_neg)
    outcome = p.precision.step(p.optimizer, p.trainable, 1.0, p.run.gradients_finite)
    p.run.note_skipped(outcome.finite, step + 1, p.precision.mode)
    with torch.no_grad():
        p.model.logit_scale.clamp_(0.0, float(np.log(100.0)))
    return StepStats(epoch, parts, float(np.mean(sig_pos)) if sig_pos else None,
                     float(np.mean(sig_neg)) if sig_neg else None, time.monotonic() - t_step, outcome.grad_norm,
                     mask_s, n_unlabelled)


def _with_unlabelled(p: Pretraining, sub: int, pixels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Micro-batch `sub`'s images without labels appended to its labelled ones (they join the masked encoder pass
    for reconstruction only), and how many there were."""
    if p.unlabelled is None:
        return pixels, 0
    extra = p.unlabelled.batch(sub).pixels
    p.unlabelled.prefetch(sub + 1)
    return torch.cat([pixels, extra]), int(extra.shape[0])


def _reconstruction_micro_step(p: Pretraining, sub: int, pixels: torch.Tensor) -> dict[str, float]:
    """One micro-batch of an MAE phase (--clip-weight 0): every image, labelled or not, is masked and its
    dropped patches reconstructed; backward runs here. Returns the loss parts and the micro-batch's counts."""
    cfg, device = p.cfg, p.device
    pixels, n_unlabelled = _with_unlabelled(p, sub, pixels)
    pixels = pixels.to(device, non_blocking=True)
    t_mask = time.monotonic()
    keep = batch_mask(p, sub, pixels, {"input_ids": None, "attention_mask": None})
    mask_s = time.monotonic() - t_mask
    with p.precision.autocast():
        mim = p.net(pixels, None, None, keep.to(device), None)[2]
    loss = cfg.mim_weight * mim.float() / cfg.grad_accum
    p.run.check_loss(loss, sub // cfg.grad_accum + 1)
    p.precision.backward(loss)
    value = float(mim.detach())
    return {"total": cfg.mim_weight * value, "contrastive": 0.0, "svd": 0.0, "mim": value,
            "n_unlabelled": n_unlabelled, "mask_s": mask_s}


def after_step(p: Pretraining, step: int, stats: StepStats) -> None:
    """Events, validation and checkpoints after optimizer step `step` (1-based)."""
    cfg, run = p.cfg, p.run
    samples_per_s = (cfg.batch_size * cfg.grad_accum + stats.n_unlabelled) * p.ddp.world_size / stats.seconds
    eta = p.progress.eta_s(step, run.elapsed(), stats.seconds)
    if step % cfg.log_every == 0:
        p.events.emit(StepEvent(
            step=step, epoch=stats.epoch, loss=stats.parts["total"], contrastive=stats.parts["contrastive"],
            svd=stats.parts["svd"], sigma1_pos=stats.sigma1_pos, sigma1_neg=stats.sigma1_neg,
            lr=p.optimizer.param_groups[0]["lr"], temperature=float(1.0 / p.model.logit_scale.detach().exp()),
            grad_norm=stats.grad_norm, samples_per_s=samples_per_s, eta_s=eta, elapsed_s=run.elapsed(),
            total_steps=p.progress.total_steps, skipped_images=p.images.skipped.count,
            mask_s=stats.mask_seconds, mim=stats.parts.get("mim"), instance=stats.parts.get("instance"),
        ))
    if p.ddp.is_main:
        tty_progress(step, p.progress.total_steps, stats.parts["total"], samples_per_s, eta)
    metrics = None
    if p.ddp.is_main and cfg.eval_every and step % cfg.eval_every == 0 and p.data.val:
        metrics = _zero_shot(p)
        p.events.emit(EvalEvent(step=step, metrics=metrics))
    if run.improves(metrics) or step % cfg.checkpoint_every == 0:
        _checkpoint(p, step, metrics)


def _zero_shot(p: Pretraining) -> dict:
    """Zero-shot metrics on the validation split, its images decoded as the training loader decodes them."""
    cfg = p.cfg
    return zero_shot_eval(p.model, p.data, p.pre, p.device, cfg.max_val_images, p.val_cache, cfg.num_workers,
                          cfg.decode_in)


def _checkpoint(p: Pretraining, step: int, metrics: dict | None = None) -> None:
    state = {"config": p.cfg.to_dict(), "model_config": p.mcfg.to_dict(), "preprocess": p.pre.to_dict(),
             "skipped_images": p.images.skipped.count, "n_train_images": len(p.data.train),
             "n_val_images": len(p.data.val)}  # the model card's data line
    p.run.save(step, state, metrics)


def finish_pretrain(p: Pretraining, step: int, cancel: CancelFlag) -> RunResult:
    """Last validation (unless just done), last checkpoint (unless this step has one), the `done` event."""
    cfg, run = p.cfg, p.run
    status = "cancelled" if run.cancelled else "completed"
    metrics = None
    evaluated_now = bool(cfg.eval_every) and step % cfg.eval_every == 0
    if status == "completed" and p.ddp.is_main and p.data.val and cfg.eval_every and not evaluated_now:
        metrics = _zero_shot(p)
        p.events.emit(EvalEvent(step=step, metrics=metrics))
        run.improves(metrics)
    if run.last_saved_step != step or metrics:
        _checkpoint(p, step, metrics)
    p.images.close()
    if p.unlabelled is not None:
        p.unlabelled.close()
    digests = gather_digests(p.model, p.ddp)
    p.events.emit(DoneEvent(
        status=status, step=step, checkpoint=run.last_checkpoint, elapsed_s=run.elapsed(),
        skipped_images=p.images.skipped.count, skipped_examples=p.images.skipped.examples,
        weight_digests=digests, reason=cancel.signal_name or None,
        image_cache={**p.images.cache_stats(), **({"val": p.val_cache.stats()} if p.val_cache is not None else {})},
    ))
    if p.ddp.enabled:
        dist.barrier()
    return RunResult(status=status, step=step, checkpoint=run.last_checkpoint)


def run_pretrain(cfg: TrainConfig, events: EventWriter, cancel: CancelFlag) -> RunResult:
    p = setup_pretrain(cfg, events)
    emit_start(p)
    step = p.run.start_step
    p.images.prefetch(step * cfg.grad_accum)
    if p.unlabelled is not None:
        p.unlabelled.prefetch(step * cfg.grad_accum)
    while p.run.begin_step(step, p.progress, cancel.requested, p.optimizer, cfg.warmup_steps, cfg.schedule):
        stats = train_step(p, step)
        step += 1
        after_step(p, step, stats)
    return finish_pretrain(p, step, cancel)

