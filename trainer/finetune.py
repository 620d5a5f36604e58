"""Fine-tuning the image tower with a classification head, ending in a calibrated classifier bundle.

Modes: `partial` trains the top `tune_blocks` transformer blocks, the final norm and projection and the head;
`full` trains every layer. (The frozen-tower `probe` needs no torch: medflip_core.finetune.probe.)
Data: an ImageFolder or a label CSV (NIH or CheXpert style) read by medflip_core.finetune.dataset, split by
patient exactly as the probe splits it. Training: train-only radiograph augmentation, a class-balanced loss
(class weights for a softmax head, positive weights for per-label sigmoids), validation ROC AUC every
`eval_every` steps with early stopping after `early_stop_patience` evaluations without improvement, a time
budget, cancel and resume. At the end the best validation weights are exported (ONNX image tower) and the head
is calibrated and thresholded on the validation patients through the same code as the probe.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medflip_core.atomic import fsync_dir
from medflip_core.bundles.bundle import IMAGE_ONNX, WEIGHTS, Bundle, load_bundle
from medflip_core.bundles.checkpoint_layout import RUN_CONFIG
from medflip_core.data.image_folder import ImageRecord
from medflip_core.errors import MedflipError
from medflip_core.events import DoneEvent, EvalEvent, EventWriter, StartEvent, StepEvent
from medflip_core.finetune.dataset import (
    LabelledSet,
    check_trainable,
    load_labelled,
    read_patient_list,
    split_for_finetune,
)
from medflip_core.finetune.exposure_check import check_classifier, exposure_of_files, flagged_warnings
from medflip_core.finetune.validation import patient_counts, small_set_note
from medflip_core.imaging.augment import AugmentConfig
from medflip_core.imaging.preprocess import PreprocessConfig
from medflip_core.inference.classifier import calibrated_probabilities
from medflip_core.metrics import roc_auc_binary
from medflip_core.model.config import ModelConfig
from medflip_core.model.image_tower import ImageTower
from medflip_core.model.optim import adamw
from trainer.batches import ImageBatches
from trainer.config import TrainConfig
from trainer.image_cache import DecodedImageCache
from trainer.precision import Precision, choose_precision, device_supports_bf16
from trainer.run_state import Progress, RunResult, RunState, write_json
from trainer.runtime import CancelFlag, any_rank, gather_digests, start_process, tty_progress

BEST_WEIGHTS = "best-model.safetensors"  # the weights of the best validation AUC so far, in the run folder
BEST_METRIC = "val_auc"
THRESHOLD_RULE = "Youden's J (sensitivity + specificity - 1) maximised on the validation patients"


class TowerClassifier(nn.Module):
    """The MedFLIP image tower (unmasked) and a linear head over its L2-normalised shared embedding, the same
    space a probe's head reads, so the exported tower + head run in the torch-free engine unchanged."""

    def __init__(self, tower: ImageTower, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.image_tower = tower
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_tower(pixels).embedding

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(pixels))


def base_bundle(init_from: str | None) -> Bundle:
    """The bundle the tower starts from (default: the bundled model): its weights, preprocessing and manifest."""
    from medflip_core.bundles.model_store import resolve_model

    try:
        return load_bundle(resolve_model(init_from), verify=False)
    except MedflipError as exc:
        raise MedflipError(f"fine-tuning starts from a model bundle (--init-from BUNDLE): {exc}") from exc


def load_tower(bundle: Bundle, cfg: TrainConfig) -> ImageTower:
    """The base bundle's image tower with its safetensors weights (the text tower is not needed)."""
    tower = ImageTower(cfg.model)
    state = {k.removeprefix("image_tower."): v.float() for k, v in load_file(str(bundle.file(WEIGHTS)))
             .items() if k.startswith("image_tower.")}
    try:
        tower.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise MedflipError(f"the image weights of {bundle.name} do not fit its model configuration: {exc}") from exc
    return tower


def set_trainable(model: TowerClassifier, mode: str, tune_blocks: int) -> None:
    """`full`: everything; `partial`: the top `tune_blocks` blocks, the final norm, the projection and the head."""
    vit = model.image_tower.vit
    for p in model.parameters():
        p.requires_grad_(mode == "full")
    if mode == "partial":
        blocks = list(vit.blocks)
        if not 1 <= tune_blocks <= len(blocks):
            raise MedflipError(f"--tune-blocks must be between 1 and {len(blocks)}, got {tune_blocks}")
        for module in [*blocks[-tune_blocks:], vit.norm, model.image_tower.proj, model.head]:
            for p in module.parameters():
                p.requires_grad_(True)


@dataclass
class TuneData:
    data: LabelledSet
    train_idx: np.ndarray
    val_idx: np.ndarray
    rule: str  # how the validation side was chosen, in words (dataset.PatientSplit)
    data_set: str  # the validation figures' data set, in the same words

    def records(self, idx: np.ndarray) -> list[ImageRecord]:
        return [ImageRecord(path=self.data.paths[i], class_name=str(i), patient_id=self.data.patients[i],
                            labels=np.zeros(0)) for i in idx]


def load_tune_data(cfg: TrainConfig) -> TuneData:
    if len(cfg.images) != 1:
        raise MedflipError("fine-tuning reads one ImageFolder or label CSV (--images PATH)")
    labels = [x.strip() for x in cfg.labels.split(",") if x.strip()] if cfg.labels else None
    data = load_labelled(cfg.images[0], image_root=cfg.image_root, labels=labels, patient_pattern=cfg.patient_pattern)
    check_trainable(data)
    given = read_patient_list(cfg.val_patients) if cfg.val_patients else None
    split = split_for_finetune(data, cfg.images[0], given, cfg.val_fraction, cfg.seed)
    train_idx, val_idx = split.train_idx, split.val_idx
    if cfg.max_images is not None and cfg.max_images < len(train_idx):  # after the split: never a validation patient
        train_idx = np.sort(np.random.default_rng(cfg.seed).choice(train_idx, cfg.max_images, replace=False))
    return TuneData(data, train_idx, val_idx, split.rule, split.data_set)


def balanced_loss(data: LabelledSet, train_idx: np.ndarray, device: torch.device) -> nn.Module:
    """Rare classes weigh as much as common ones: inverse-frequency class weights (softmax) or the
    negative/positive ratio as each label's positive weight (sigmoids)."""
    ind = data.indicator()[train_idx].astype(np.float64)
    if data.multi_label:
        pos = ind.sum(axis=0)
        weight = np.clip((len(ind) - pos) / np.maximum(pos, 1.0), 0.1, 100.0)
        return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight, dtype=torch.float32, device=device))
    counts = np.maximum(ind.sum(axis=0), 1.0)
    weight = len(ind) / (len(counts) * counts)
    return nn.CrossEntropyLoss(weight=torch.tensor(weight, dtype=torch.float32, device=device))


class Validation:
    """The validation images, decoded and preprocessed once (no augmentation; float16 in memory), their ROC AUC
    per class while training (on a fixed seeded subset of at most `cap` images, the same at every evaluation),
    and all of them for the calibration and figures of the bundle."""

    def __init__(self, tune: TuneData, pre: PreprocessConfig, cap: int | None, workers: int = 0,
                 decode_in: str = "threads") -> None:
        loader = ImageBatches(tune.records(tune.val_idx), pre, batch_size=1, seed=0, workers=workers,
                              decode_in=decode_in)
        pixels, keep = [], []
        try:
            for start in range(0, len(tune.val_idx), 64):  # in chunks: float32 arrays never pile up
                chunk = range(start, min(start + 64, len(tune.val_idx)))
                for i, arr in zip(chunk, loader.load_many(chunk), strict=True):
                    if arr is not None:
                        pixels.append(arr.astype(np.float16))
                        keep.append(i)
        finally:
            loader.close()
        self.skipped = loader.skipped
        if not keep:
            raise MedflipError("none of the validation images could be read")
        self.idx = tune.val_idx[np.asarray(keep, dtype=int)]
        self.pixels = torch.from_numpy(np.stack(pixels))
        self.indicator = tune.data.indicator()[self.idx]
        self.patients = [tune.data.patients[i] for i in self.idx]
        self.classes = tune.data.classes
        self.multi_label = tune.data.multi_label
        # too few validation patients with or without a class: every evaluation event says so, as the bundle does
        self.small = small_set_note(self.classes, patient_counts(self.indicator, self.patients), self.multi_label)
        self.exposure: dict | None = None  # the exposure check, once the bundle is written
        self.during = np.arange(len(self.idx))
        if cap is not None and len(self.idx) > cap:
            self.during = np.sort(np.random.default_rng(0).choice(len(self.idx), cap, replace=False))

    @torch.no_grad()
    def embeddings(self, model: TowerClassifier, device: torch.device, rows: np.ndarray | None = None,
                   batch: int = 32) -> np.ndarray:
        was_training = model.training
        model.eval()
        pixels = self.pixels if rows is None else self.pixels[torch.from_numpy(rows)]
        out = [model.embed(pixels[s : s + batch].float().to(device)).float().cpu()
               for s in range(0, len(pixels), batch)]
        model.train(was_training)
        return torch.cat(out).numpy().astype(np.float64)

    def metrics(self, model: TowerClassifier, device: torch.device) -> dict:
        emb = self.embeddings(model, device, self.during)
        indicator = self.indicator[self.during]
        w = model.head.weight.detach().double().cpu().numpy()
        b = model.head.bias.detach().double().cpu().numpy()
        probs = calibrated_probabilities(emb @ w.T + b, self.multi_label, {"method": "none"})
        per_class = {c: roc_auc_binary(indicator[:, j], probs[:, j]) for j, c in enumerate(self.classes)}
        finite = [v for v in per_class.values() if np.isfinite(v)]
        return {BEST_METRIC: float(np.mean(finite)) if finite else float("nan"), "val_auc_per_class": per_class,
                "images": len(self.during), "patients": len({self.patients[i] for i in self.during}),
                "small_validation": self.small["headline"] if self.small else None}


def _save_best(out: Path, model: TowerClassifier) -> None:
    """The best weights so far, replaced atomically (a kill mid-write leaves the previous best)."""
    tmp = out / f".{BEST_WEIGHTS}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(out / BEST_WEIGHTS)
    fsync_dir(out)


def run_finetune(cfg: TrainConfig, events: EventWriter, cancel: CancelFlag) -> RunResult:
    device, ddp = start_process(cfg.device, cfg.seed, events)
    out = Path(cfg.out_dir)
    base = base_bundle(cfg.init_from)
    cfg.model = ModelConfig.from_dict(base.manifest["model"])  # the base bundle is the one source of the shape
    tune = load_tune_data(cfg)
    pre = PreprocessConfig.from_dict(base.manifest.get("preprocess") or {"image_size": cfg.model.image_size})
    model = TowerClassifier(load_tower(base, cfg), cfg.model.embed_dim, len(tune.data.classes)).to(device)
    set_trainable(model, cfg.finetune_mode, cfg.tune_blocks)
    per_process = len(tune.train_idx) // ddp.world_size
    if per_process < 1:
        raise MedflipError(f"only {len(tune.train_idx)} training images for {ddp.world_size} process(es)")
    if cfg.batch_size > per_process:  # a small labelled set: every step sees all of it, and the user is told
        tune.data.notes.append(f"batch size {cfg.batch_size} lowered to {per_process}: only {len(tune.train_idx)} "
                               "training images")
        cfg.batch_size = per_process
    augment = AugmentConfig() if cfg.augment else None
    image_cache = DecodedImageCache(cfg.image_cache_mb) if cfg.image_cache_mb > 0 else None
    images = ImageBatches(tune.records(tune.train_idx), pre, cfg.batch_size, cfg.seed, ddp.rank, ddp.world_size,
                          cfg.num_workers, augment=augment, cache=image_cache, decode_in=cfg.decode_in)
    head_params = list(model.head.parameters())
    tower_params = [p for p in model.image_tower.parameters() if p.requires_grad]
    optimizer = adamw([{"params": tower_params, "lr": cfg.lr, "base_lr": cfg.lr},
                       {"params": head_params, "lr": cfg.head_lr, "base_lr": cfg.head_lr, "weight_decay": 0.0}],
                      device, weight_decay=cfg.weight_decay)
    params = tower_params + head_params
    precision = Precision(choose_precision(cfg.amp, device.type, device_supports_bf16(device)), device)
    run = RunState(out, cfg.keep_last, ddp, events, model, optimizer, best_metric=BEST_METRIC)
    start_step = run.resume() if cfg.resume else 0
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_CONFIG, cfg.to_dict())
    validation = Validation(tune, pre, cfg.max_val_images, cfg.num_workers, cfg.decode_in) if ddp.is_main else None
    net: nn.Module = model
    if ddp.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    progress = Progress(cfg, images.steps_per_epoch)
    events.emit(StartEvent(job="finetune", config=cfg.to_dict(), device=str(device), world_size=ddp.world_size,
                           n_train=len(tune.train_idx), n_val=len(tune.val_idx), classes=tune.data.classes,
                           steps_per_epoch=progress.steps_per_epoch, total_steps=progress.total_steps,
                           start_step=start_step, resumed_from=run.resumed_from, budget_s=progress.budget_s,
                           amp=precision.mode, grad_scaler=precision.scaler is not None,
                           image_cache_mb=cfg.image_cache_mb if image_cache is not None else 0,
                           validation_rule=tune.rule),
                mode=cfg.finetune_mode, base_model=base.name, images=len(tune.data), multi_label=tune.data.multi_label,
                notes=tune.data.notes)
    ckpt_state = {"config": cfg.to_dict(), "model_config": cfg.model.to_dict(), "classes": tune.data.classes,
                  "multi_label": tune.data.multi_label, "preprocess": pre.to_dict(), "base_model": base.name}
    loss_fn = balanced_loss(tune.data, tune.train_idx, device)
    targets_all = torch.from_numpy(tune.data.indicator().astype(np.float32) if tune.data.multi_label
                                   else tune.data.targets.astype(np.int64))
    train_targets = targets_all[torch.from_numpy(tune.train_idx)]
    step, stale, stopped_early = start_step, 0, False
    while run.begin_step(step, progress, cancel.requested, optimizer, cfg.warmup_steps, cfg.schedule):
        t_step = time.monotonic()
        optimizer.zero_grad(set_to_none=True)
        total, epoch = 0.0, 0
        for micro in range(cfg.grad_accum):
            sub = step * cfg.grad_accum + micro
            epoch, pixels, _, used = images.batch(sub)
            images.prefetch(sub + 1)
            targets = train_targets[torch.as_tensor(used)].to(device)
            with precision.autocast():
                loss = loss_fn(net(pixels.to(device)).float(), targets) / cfg.grad_accum
            run.check_loss(loss, step + 1)
            precision.backward(loss)
            total += float(loss.detach())
        outcome = precision.step(optimizer, params, float("inf"), run.gradients_finite)
        run.note_skipped(outcome.finite, step + 1, precision.mode)
        step += 1
        step_s = time.monotonic() - t_step
        events.emit(StepEvent(step=step, epoch=epoch, loss=total, lr=optimizer.param_groups[0]["lr"],
                              samples_per_s=cfg.batch_size * cfg.grad_accum * ddp.world_size / step_s,
                              eta_s=progress.eta_s(step, run.elapsed(), step_s), total_steps=progress.total_steps,
                              elapsed_s=run.elapsed(), grad_norm=outcome.grad_norm,
                              skipped_images=images.skipped.count))
        if ddp.is_main:
            tty_progress(step, progress.total_steps, total, cfg.batch_size / step_s, None)
        if cfg.eval_every and step % cfg.eval_every == 0:
            stale = _evaluate(run, validation, model, device, step, stale, out)
            stopped_early = any_rank(stale >= cfg.early_stop_patience, ddp)
            if stopped_early:
                run.save(step, ckpt_state)
                break
        if step % cfg.checkpoint_every == 0:
            run.save(step, ckpt_state)
    images.close()
    if run.cancelled:
        return _finish_cancelled(run, step, ckpt_state, images, cancel, ddp)
    if ddp.is_main and (not (out / BEST_WEIGHTS).is_file() or (cfg.eval_every and step % cfg.eval_every)):
        _evaluate(run, validation, model, device, step, stale, out)  # the last weights get their evaluation too
    run.save(step, ckpt_state)
    digests = gather_digests(model, ddp)  # every rank, before rank 0 alone writes the bundle
    bundle_path = None
    if ddp.is_main and cfg.bundle_out:
        model.load_state_dict(load_file(str(out / BEST_WEIGHTS)))
        bundle_path = write_tuned_bundle(cfg, base, model, validation, tune, device, run, step,
                                         images.skipped.count + validation.skipped.count)
    events.emit(DoneEvent(status="completed", step=step, checkpoint=run.last_checkpoint, elapsed_s=run.elapsed(),
                          skipped_images=images.skipped.count, skipped_examples=images.skipped.examples,
                          weight_digests=digests, image_cache=images.cache_stats()),
                bundle=bundle_path and str(bundle_path), stopped_early=stopped_early, best_val_auc=run.best_value,
                warnings=_warnings(validation))
    if ddp.enabled:
        dist.barrier()
    return RunResult(status="completed", step=step, checkpoint=run.last_checkpoint)


def _warnings(validation: Validation | None) -> list[str]:
    """The done event's warnings: too few validation patients; exposure alone separating the labels."""
    if validation is None:
        return []
    return ([validation.small["message"]] if validation.small else []) + flagged_warnings(validation.exposure)


def _evaluate(run: RunState, validation: Validation | None, model: TowerClassifier, device: torch.device,
              step: int, stale: int, out: Path) -> int:
    """Validation AUC now (rank 0); the best weights kept on disk. Returns evaluations since the last gain."""
    if validation is None:
        return stale
    metrics = validation.metrics(model, device)
    improved = run.improves(metrics) or not (out / BEST_WEIGHTS).is_file()
    if improved:
        _save_best(out, model)
    run.events.emit(EvalEvent(step=step, metrics={**metrics, "best_val_auc": run.best_value,
                                                  "data_set": "validation patients of the fine-tuning data"}))
    return 0 if improved else stale + 1


def _finish_cancelled(run: RunState, step: int, ckpt_state: dict, images: ImageBatches, cancel: CancelFlag,
                      ddp) -> RunResult:
    run.save(step, ckpt_state)
    events = run.events
    events.emit(DoneEvent(status="cancelled", step=step, checkpoint=run.last_checkpoint, elapsed_s=run.elapsed(),
                          skipped_images=images.skipped.count, skipped_examples=images.skipped.examples,
                          reason=cancel.signal_name or None, image_cache=images.cache_stats()), bundle=None,
                message="stopped; no model was written. Resume the run to continue.")
    if ddp.enabled:
        dist.barrier()
    return RunResult(status="cancelled", step=step, checkpoint=run.last_checkpoint)


def write_tuned_bundle(cfg: TrainConfig, base: Bundle, model: TowerClassifier, validation: Validation,
                       tune: TuneData, device: torch.device, run: RunState, step: int, skipped: int) -> Path:
    """Export the tuned tower (ONNX), calibrate the head on the validation patients and write the bundle
    atomically (medflip_core.finetune.classifier_bundle): the same calibration, thresholds and figures as a probe."""
    from medflip_core.finetune.classifier_bundle import write_classifier_bundle
    from medflip_core.finetune.validation import calibrate_on_validation, validation_summary
    from medflip_core.model.export import export_image_tower

    model = model.eval()
    emb = validation.embeddings(model, device)
    weight = model.head.weight.detach().double().cpu().numpy()
    bias = model.head.bias.detach().double().cpu().numpy()
    classifier, figures = calibrate_on_validation(tune.data.classes, tune.data.multi_label, weight, bias, emb,
                                                  validation.indicator, validation.patients, cfg.n_boot, cfg.seed)
    figures["data_set"] = tune.data_set
    pre = PreprocessConfig.from_dict(base.preprocess or {})  # exposure is read at 32 px whatever the model's size
    train_exposure = exposure_of_files([tune.data.paths[i] for i in tune.train_idx], pre)
    val_exposure = exposure_of_files([tune.data.paths[i] for i in validation.idx], pre)
    figures["exposure_check"] = check_classifier(train_exposure, tune.data.indicator()[tune.train_idx], val_exposure,
                                                 validation.indicator, validation.patients, classifier, figures,
                                                 cfg.n_boot, cfg.seed)
    validation.exposure = figures["exposure_check"]
    onnx_path = Path(cfg.out_dir) / "tuned_image_encoder.onnx"
    export_image_tower(model.image_tower.cpu(), cfg.model, onnx_path)
    data = tune.data
    train_patients = {data.patients[i] for i in tune.train_idx}
    summary = validation_summary(figures)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fields = {
        "name": Path(cfg.bundle_out).name,
        "base_model": {"name": base.name, "path": str(base.path),
                       "image_encoder_sha256": base.manifest["files"][IMAGE_ONNX]["sha256"]},
        "classifier": {"threshold_rule": THRESHOLD_RULE, "mode": cfg.finetune_mode,
                       "head_fit": f"trained with the tower ({cfg.finetune_mode}: {trainable:,} trainable parameters"
                                   + (f", top {cfg.tune_blocks} blocks" if cfg.finetune_mode == "partial" else "")
                                   + f"), class-balanced loss, {step} steps of {cfg.batch_size}, train-only "
                                   f"augmentation {'on' if cfg.augment else 'off'}; weights of the best validation "
                                   f"ROC AUC ({run.best_value:.3f}) kept"},
        "provenance": {
            "data": {"source": data.source, "kind": "label CSV" if Path(cfg.images[0]).is_file() else "ImageFolder",
                     "sha256": _data_sha256(data, np.concatenate([tune.train_idx, validation.idx])),
                     "images_used": len(tune.train_idx) + len(tune.val_idx) - skipped,
                     "patients": len(train_patients | set(validation.patients)),
                     "images_skipped": skipped,
                     "train_images": len(tune.train_idx), "train_patients": len(train_patients),
                     "val_images": len(validation.idx), "val_patients": len(set(validation.patients)),
                     "split": tune.rule, "notes": data.notes},
            "config": cfg.to_dict(), "command": f"python -m trainer finetune --finetune-mode {cfg.finetune_mode}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": run.elapsed(),
            "machine": f"{platform.system()} {platform.machine()}, {device}",
        },
        "validation": summary,
    }
    try:
        return write_classifier_bundle(cfg.bundle_out, base, classifier, fields, figures, overwrite=True,
                                       keep_text=False, image_encoder=onnx_path)
    finally:
        onnx_path.unlink(missing_ok=True)


def _data_sha256(data: LabelledSet, idx: np.ndarray) -> str:
    """The content hashes, patients and labels of the images used (the probe's definition)."""
    from medflip_core.finetune.embedding_cache import content_hash
    from medflip_core.finetune.probe import data_sha256

    used = data.subset(np.sort(idx))
    return data_sha256([content_hash(p) for p in used.paths], used)
