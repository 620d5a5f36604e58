"""What a training job reads: indexed images with a patient split, and the labelled sentence pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medflip_core.data.image_folder import ImageRecord, index_image_folder, load_class_map, patient_split
from medflip_core.data.pairs import read_pairs_csv
from medflip_core.data.sentences import labelled_sentences
from medflip_core.errors import MedflipError
from medflip_core.labels import normalise_label_name
from trainer.config import TrainConfig
from trainer.data import SentencePool


@dataclass
class TrainingData:
    train: list[ImageRecord]
    val: list[ImageRecord]
    sentences: SentencePool | None
    class_names: list[str]  # class folders, in order
    class_prompts: list[str]  # the label text zero-shot evaluation uses for each class
    paired: bool = False  # each record carries its own report (record.text)


def index_images(cfg: TrainConfig) -> list[ImageRecord]:
    class_map = load_class_map(cfg.class_map)
    records: list[ImageRecord] = []
    for root in cfg.images:
        records.extend(index_image_folder(root, class_map, cfg.patient_pattern))
    if cfg.max_images is not None and len(records) > cfg.max_images:
        # a deterministic subset that keeps the class balance of the whole
        rng = np.random.default_rng(cfg.seed)
        picks = np.sort(rng.choice(len(records), cfg.max_images, replace=False))
        records = [records[i] for i in picks]
    return records


def class_prompt(class_name: str, class_map: dict[str, tuple[str, ...]]) -> str:
    """The first mapped label of a class folder is its name in the label space ("Pneumonia" for PNEUMONIA)."""
    names = class_map.get(class_name.lower())
    return names[0] if names else normalise_label_name(class_name)


def build_training_data(cfg: TrainConfig, tokenize: Callable | None) -> TrainingData:
    if cfg.pairs_csv:
        return _paired_data(cfg)
    records = index_images(cfg)
    train, val = patient_split(records, cfg.val_fraction, cfg.seed)
    if not train:
        raise MedflipError("the training split is empty: add images or lower --val-fraction")
    names = sorted({r.class_name for r in records})
    class_map = load_class_map(cfg.class_map)
    prompts = [class_prompt(n, class_map) for n in names]
    pool = None
    if cfg.job == "pretrain" and cfg.corpus:
        sentences, labels = labelled_sentences(cfg.corpus, cfg.max_sentences, cfg.seed)
        focus = np.clip(np.stack([r.labels for r in train]).max(axis=0), 0, None)
        pool = SentencePool(sentences, labels, tokenize, focus_labels=focus)
    return TrainingData(train=train, val=val, sentences=pool, class_names=names, class_prompts=prompts)


def _paired_data(cfg: TrainConfig) -> TrainingData:
    records = read_pairs_csv(cfg.pairs_csv, cfg.patient_pattern)
    if cfg.max_images is not None and len(records) > cfg.max_images:
        picks = np.sort(np.random.default_rng(cfg.seed).choice(len(records), cfg.max_images, replace=False))
        records = [records[i] for i in picks]
    train, val = patient_split(records, cfg.val_fraction, cfg.seed)
    if not train:
        raise MedflipError("the training split is empty: add pairs or lower --val-fraction")
    names = sorted({r.class_name for r in records})
    # zero-shot validation needs at least two classes among the reports' main labels
    val = val if len(names) >= 2 else []
    return TrainingData(train=train, val=val, sentences=None, class_names=names, class_prompts=names, paired=True)
