"""The `probe` fine-tuning job: frozen ONNX image tower -> cached embeddings -> linear head -> calibration and
thresholds on validation -> classifier bundle. No torch anywhere on this path.

Events: the trainer's typed events (medflip_core.events) with probe extras: `start` (mode "probe", base model);
`step` while embedding (step = images embedded of total_steps, samples_per_s, eta_s; no loss or lr: null / 0;
phase "embed"); `eval` (val_auc macro, val_auc_per_class, their patient-level CIs); `done` (status completed or
cancelled, step = images embedded, checkpoint null, `bundle` the classifier bundle); `error` is written by the
caller. SIGTERM/SIGINT stop the job between two batches; every finished batch is already in the cache,
so running the same command again continues where the killed job stopped.
"""

from __future__ import annotations

import hashlib
import platform
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medflip_core.bundles.bundle import IMAGE_ONNX
from medflip_core.errors import MedflipError
from medflip_core.events import DoneEvent, EvalEvent, EventWriter, StartEvent, StepEvent
from medflip_core.finetune.classifier_bundle import write_classifier_bundle
from medflip_core.finetune.dataset import (
    LabelledSet,
    PatientSplit,
    check_split,
    check_trainable,
    load_labelled,
    split_for_finetune,
)
from medflip_core.finetune.embedding_cache import EmbeddingCache, content_hash, model_key
from medflip_core.finetune.exposure_check import check_classifier, exposure_of_files, flagged_warnings
from medflip_core.finetune.head import fit_head
from medflip_core.finetune.validation import calibrate_on_validation, validation_summary
from medflip_core.imaging import load_image
from medflip_core.imaging.exposure import film_exposure
from medflip_core.inference.classifier import Classifier
from medflip_core.inference.engine import Engine

THRESHOLD_RULE = "Youden's J (sensitivity + specificity - 1) maximised on the validation patients"


@dataclass
class ProbeConfig:
    images: str  # an ImageFolder or a label CSV
    out: str  # the bundle folder to write
    image_root: str | None = None  # where a CSV's image paths start (default: the CSV's folder)
    labels: list[str] | None = None  # classes to learn (default: every class of the data)
    base: str | None = None  # base model name or bundle folder (default: the bundled model)
    val_fraction: float = 0.2
    seed: int = 0
    val_patients: list[str] | None = None  # exactly these patients on the validation side (else val_fraction)
    budget_minutes: float | None = None
    patient_pattern: str | None = None
    cache_dir: str | None = None  # default: <user data>/cache/embeddings
    n_boot: int = 1000
    batch_size: int = 16
    name: str | None = None
    overwrite: bool = False
    threads: int | None = None
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CancelFlag:
    """SIGTERM/SIGINT ask the job to stop after the batch it is embedding."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.requested = True


@dataclass
class ProbeResult:
    status: str  # completed | cancelled
    bundle: Path | None = None
    seconds: float = 0.0
    embedded: int = 0  # images embedded by this run (the rest came from the cache)
    cached: int = 0
    skipped: list[str] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    val_set: LabelledSet | None = None  # the validation images, for comparisons on the same patients
    val_embeddings: np.ndarray | None = None
    classifier: Classifier | None = None


def default_cache_dir() -> Path:
    from medflip_core.resources import user_data_dir

    return user_data_dir() / "cache" / "embeddings"


def hash_files(paths: list[Path], cache: EmbeddingCache) -> list[str]:
    """The content key of every file; a file that cannot be read gets a key the cache records as failed."""
    keys: list[str] = []
    for p in paths:
        try:
            keys.append(content_hash(p))
        except OSError as exc:
            keys.append(f"unreadable:{p}")
            cache.failed[keys[-1]] = f"{Path(p).name}: cannot read the file ({exc.strerror})"
    return keys


def missing_from_cache(keys: list[str], cache: EmbeddingCache) -> list[int]:
    """Indices of the files to embed: not in the cache, and each distinct content once."""
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    return [i for k, i in first.items() if k not in cache]


def embed_missing(engine: Engine, paths: list[Path], keys: list[str], todo: list[int], cache: EmbeddingCache,
                  events: EventWriter, cancel: CancelFlag, deadline: float | None, batch_size: int
                  ) -> tuple[int, bool]:
    """Embed the `todo` files batch by batch, each batch stored in the cache at once; (images done, stopped
    early by cancel or the time budget)."""
    total, done, t0 = len(todo), 0, time.perf_counter()
    events.emit(StepEvent(step=0, epoch=0, loss=float("nan"), lr=0.0, samples_per_s=0.0, eta_s=None,
                          total_steps=total, elapsed_s=0.0), phase="embed", cached=len(keys) - total)
    for start in range(0, total, batch_size):
        if cancel.requested or (deadline is not None and time.time() > deadline):
            return done, True
        chunk = todo[start : start + batch_size]
        images, good, failed = [], [], {}
        for i in chunk:
            try:
                images.append(load_image(paths[i]))
                good.append(keys[i])
            except MedflipError as exc:
                failed[keys[i]] = str(exc)
        embs = engine.embed_images(images).embedding if images else np.zeros((0, 0), np.float32)
        cache.add(dict(zip(good, embs, strict=True)), failed,
                  {k: film_exposure(im, engine.pre) for k, im in zip(good, images, strict=True)})
        done += len(chunk)
        elapsed = time.perf_counter() - t0
        rate = done / max(elapsed, 1e-9)
        # no loss or learning rate while embedding: loss is NaN (null on the wire), lr 0
        events.emit(StepEvent(step=done, epoch=0, loss=float("nan"), lr=0.0, samples_per_s=round(rate, 2),
                              eta_s=round((total - done) / rate, 1), total_steps=total, elapsed_s=round(elapsed, 2),
                              skipped_images=len(failed)), phase="embed")
    return done, False


def exposure_of(engine: Engine, paths: list[Path], keys: list[str], cache: EmbeddingCache) -> np.ndarray:
    """(N, 2) exposure numbers of the films (imaging.exposure), NaN rows for unreadable ones. Films embedded before
    the cache kept exposure are read once more, and their numbers cached."""
    todo = {k: p for p, k in zip(paths, keys, strict=True) if k in cache.embeddings and k not in cache.exposure}
    numbers = exposure_of_files(list(todo.values()), engine.pre)
    # a file readable when it was embedded but not now keeps a NaN row: the check leaves it out
    found = {k: row for k, row in zip(todo, numbers, strict=True) if np.isfinite(row).all()}
    if found:
        cache.add({}, None, found)
    nan = np.full(2, np.nan, np.float32)
    return np.stack([cache.exposure.get(k, nan) for k in keys]) if keys else np.zeros((0, 2), np.float32)


def embed_with_cache(engine: Engine, paths: list[Path], cache: EmbeddingCache, events: EventWriter,
                     cancel: CancelFlag, deadline: float | None, batch_size: int) -> tuple[list[str], int, bool]:
    """Content keys of `paths` (after embedding the ones the cache lacks), images embedded now, and whether the
    job was stopped (cancel or time budget) before it finished."""
    keys = hash_files(paths, cache)
    done, stopped = embed_missing(engine, paths, keys, missing_from_cache(keys, cache), cache, events, cancel,
                                  deadline, batch_size)
    return keys, done, stopped


def data_sha256(keys: list[str], data: LabelledSet) -> str:
    h = hashlib.sha256()
    for key, patient, target in sorted(zip(keys, data.patients, data.targets.tolist(), strict=True)):
        h.update(f"{key}\t{patient}\t{target}\n".encode())
    return h.hexdigest()


def run_probe(cfg: ProbeConfig, events: EventWriter, cancel: CancelFlag | None = None) -> ProbeResult:
    """The whole job. The patient split is made before embedding (from labels and patients only), so it does
    not depend on which files turn out unreadable; those are then left out of their side."""
    from medflip_core.bundles.model_store import resolve_finetune_base

    t0 = time.time()
    base = resolve_finetune_base(cfg.base)  # never a classifier: said before any image is read
    cancel = cancel or CancelFlag()
    deadline = t0 + cfg.budget_minutes * 60 if cfg.budget_minutes else None
    data = load_labelled(cfg.images, image_root=cfg.image_root, labels=cfg.labels,
                         patient_pattern=cfg.patient_pattern)
    check_trainable(data)
    split = split_for_finetune(data, cfg.images, set(cfg.val_patients or ()), cfg.val_fraction, cfg.seed)
    engine = Engine(base, threads=cfg.threads)
    cache = EmbeddingCache(cfg.cache_dir or default_cache_dir(), model_key(engine.bundle))
    keys = hash_files(data.paths, cache)
    todo = missing_from_cache(keys, cache)
    events.emit(StartEvent(job="finetune", config=cfg.to_dict(), device="cuda" if engine.device.on_gpu else "cpu",
                           world_size=1,
                           n_train=len(split.train_idx), n_val=len(split.val_idx), steps_per_epoch=len(todo),
                           total_steps=len(todo), budget_s=deadline and deadline - t0, classes=data.classes,
                           validation_rule=split.rule),
                mode="probe", base_model=engine.bundle.name, images=len(data), multi_label=data.multi_label,
                notes=data.notes)
    embedded, stopped = embed_missing(engine, data.paths, keys, todo, cache, events, cancel, deadline,
                                      cfg.batch_size)
    if stopped:
        reason = "cancel" if cancel.requested else "time budget"
        events.emit(DoneEvent(status="cancelled", step=embedded, checkpoint=None, elapsed_s=round(time.time() - t0, 2),
                              reason=reason), bundle=None, embedded=embedded,
                    message="stopped while embedding; the embeddings so far are cached, run again to continue")
        return ProbeResult("cancelled", seconds=time.time() - t0, embedded=embedded)
    cache.compact()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small BLAS calls: one thread is several times faster than two fighting
        return _fit_and_write(cfg, events, data, keys, cache, engine, embedded, t0, split)


def _fit_and_write(cfg: ProbeConfig, events: EventWriter, data: LabelledSet, keys: list[str],
                   cache: EmbeddingCache, engine: Engine, embedded: int, t0: float,
                   split: PatientSplit) -> ProbeResult:
    readable = np.array([k in cache.embeddings for k in keys])
    skipped = sorted({cache.failed.get(k, k) for k in keys if k not in cache.embeddings})
    train_idx, val_idx = (idx[readable[idx]] for idx in (split.train_idx, split.val_idx))
    used_idx = np.flatnonzero(readable)
    check_trainable(data.subset(used_idx))
    check_split(data, train_idx, val_idx, split.rule)
    x = np.zeros((len(data), engine.bundle.embed_dim))
    x[used_idx] = np.stack([cache.embeddings[keys[i]] for i in used_idx])
    ind = data.indicator()
    train_patients = [data.patients[i] for i in train_idx]
    head = fit_head(x[train_idx], ind[train_idx], train_patients, data.multi_label, seed=cfg.seed)
    val_set = data.subset(val_idx)
    classifier, figures = calibrate_on_validation(data.classes, data.multi_label, head.weight, head.bias,
                                                  x[val_idx], ind[val_idx], val_set.patients, cfg.n_boot, cfg.seed)
    figures["data_set"] = split.data_set
    exposure = exposure_of(engine, data.paths, keys, cache)
    figures["exposure_check"] = check_classifier(exposure[train_idx], ind[train_idx], exposure[val_idx], ind[val_idx],
                                                 val_set.patients, classifier, figures, cfg.n_boot, cfg.seed)
    per_class_auc = {c: v["roc_auc"] for c, v in figures["per_class"].items()}
    events.emit(EvalEvent(step=embedded, metrics={
        "val_auc": figures["macro_roc_auc"], "val_auc_per_class": {c: a["value"] for c, a in per_class_auc.items()},
        "val_auc_ci95": {c: a["ci95"] for c, a in per_class_auc.items()}, "data_set": figures["data_set"],
        "images": figures["images"], "patients": figures["patients"], "ece": figures["ece"],
        "small_validation": (figures["small_validation"] or {}).get("headline"),
        "exposure_check": (figures["exposure_check"] or {}).get("headline")}))
    used = data.subset(used_idx)
    used_keys = [keys[i] for i in used_idx]
    provenance = {
        "data": {"source": data.source, "kind": "label CSV" if Path(cfg.images).is_file() else "ImageFolder",
                 "sha256": data_sha256(used_keys, used), "images_used": len(used),
                 "patients": len(set(used.patients)), "images_skipped": len(skipped),
                 "train_images": len(train_idx), "train_patients": len(set(train_patients)),
                 "val_images": len(val_idx), "val_patients": len(set(val_set.patients)), "split": split.rule,
                 "notes": data.notes},
        "config": cfg.to_dict(), "command": cfg.command or "medflip finetune --mode probe",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": time.time() - t0,
        "machine": f"{platform.system()} {platform.machine()}, {engine.providers[0]}",
    }
    summary = validation_summary(figures)
    fields = {
        "name": cfg.name or Path(cfg.out).name,
        "base_model": {"name": engine.bundle.name, "path": str(engine.bundle.path),
                       "image_encoder_sha256": engine.bundle.manifest["files"][IMAGE_ONNX]["sha256"]},
        "classifier": {"threshold_rule": THRESHOLD_RULE, "mode": "probe",
                       "head_fit": f"logistic regression, class-balanced weights, L2 strength C={head.c} chosen by "
                                   "patient-grouped 5-fold cross-validation on the training patients "
                                   f"(mean ROC AUC per C: { {c: round(v, 4) for c, v in head.cv_auc.items()} })"},
        "provenance": provenance,
        "validation": summary,
    }
    bundle = write_classifier_bundle(cfg.out, engine.bundle, classifier, fields, figures, overwrite=cfg.overwrite)
    seconds = time.time() - t0
    events.emit(DoneEvent(status="completed", step=embedded, checkpoint=None, elapsed_s=round(seconds, 2),
                          skipped_images=len(skipped), skipped_examples=skipped[:5]),
                bundle=str(bundle), embedded=embedded, cached=len(data) - embedded, validation=summary,
                warnings=([figures["small_validation"]["message"]] if figures["small_validation"] else [])
                + flagged_warnings(figures["exposure_check"]))
    return ProbeResult("completed", bundle=bundle, seconds=seconds, embedded=embedded,
                       cached=len(data) - embedded, skipped=skipped, validation=figures, val_set=val_set,
                       val_embeddings=x[val_idx], classifier=classifier)
