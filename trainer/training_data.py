"""What a training job reads: indexed images with a patient split, and the labelled sentence pool (from the config)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.data.image_folder import (
    ImageRecord,
    flat_folder_problem,
    index_image_folder,
    load_class_map,
    split_then_subset,
)
from medflip_core.data.label_csv import source_split
from medflip_core.data.labelled_sentences import labelled_corpus_part, labelled_sentences
from medflip_core.data.pairs import read_pairs_csv
from medflip_core.data.patient_sides import csv_validation_patients
from medflip_core.data.sampling import MixedSampler, balance_key, build_sources
from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import CHEXPERT_LABELS, normalise_label_name
from trainer.batches import SentencePool
from trainer.config import TrainConfig


@dataclass
class TrainingData:
    train: list[ImageRecord]
    val: list[ImageRecord]
    sentences: SentencePool | None
    class_names: list[str]  # class folders, in order
    class_prompts: list[str]  # the label text zero-shot evaluation uses for each class
    paired: bool = False  # each record carries its own report (record.text)
    sources: list[str] | None = None  # source of every training record (with --extra-sources)


def label_csv_inputs(cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """--images entries split into ImageFolder roots and label CSV files (e.g. the Labelling tab's labels.csv)."""
    folders, csvs = [], []
    for entry in cfg.images:
        path = Path(entry)
        if path.is_file() and path.suffix.lower() == ".csv":
            csvs.append(entry)
        elif path.is_file():
            raise MedflipError(f"{entry} is a file: --images takes image folders (one sub-folder per class) or "
                               "label CSV files (.csv)")
        else:
            folders.append(entry)
    return folders, csvs


def index_images(cfg: TrainConfig, folders: list[str] | None = None) -> list[ImageRecord]:
    class_map = load_class_map(cfg.class_map)
    records: list[ImageRecord] = []
    for root in cfg.images if folders is None else folders:
        problem = flat_folder_problem(root, cfg.job)
        if problem:
            raise MedflipError(problem)
        records.extend(index_image_folder(root, class_map, cfg.patient_pattern))
    return records  # --max-images subsets the training side after the patient split (split_then_subset)


def labelling_sides(path: str, train: list[ImageRecord], val: list[ImageRecord]
                    ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A Labelling tab's labels.csv keeps the Labelling tab's own validation patients out of training (its
    classifiers are measured on them: a tower pre-trained on their labels would make those figures optimistic);
    any other CSV keeps its split (label_csv.source_split)."""
    held = csv_validation_patients(path)
    if held is None:
        return train, val
    records = train + val
    return [r for r in records if r.patient_id not in held], [r for r in records if r.patient_id in held]


def _in_label_space(path: str, train: list[ImageRecord], val: list[ImageRecord]
                    ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """An --images CSV's images whose labels name something of the label space: the image-text loss links images
    and reports through it, and an image labelled only outside it ("bacterial") would be pushed away from every
    report. Such labels are a classifier's to learn (fine-tuning); the films can be images without labels."""
    keep_train = [r for r in train if r.labels.any()]
    keep_val = [r for r in val if r.labels.any()]
    left = len(train) + len(val) - len(keep_train) - len(keep_val)
    if not keep_train:
        raise MedflipError(f"{path}: no image has a label of the model's label space ({', '.join(CHEXPERT_LABELS)}), "
                           "which pre-training links images and reports through. Fine-tune a classifier on these "
                           "labels instead, or give the films' folder as images without labels.")
    if left:
        print(f"note: {left} image(s) of {path} have labels outside the model's label space and are left out of "
              "pre-training (fine-tune a classifier on such labels)", file=sys.stderr, flush=True)
    return keep_train, keep_val


def class_prompt(class_name: str, class_map: dict[str, tuple[str, ...]]) -> str:
    """The first mapped label of a class folder is its name in the label space ("Pneumonia" for PNEUMONIA)."""
    names = class_map.get(class_name.lower())
    return names[0] if names else normalise_label_name(class_name)


def build_training_data(cfg: TrainConfig, tokenize: Callable | None) -> TrainingData:
    if cfg.pairs_csv:
        return _paired_data(cfg)
    folders, label_csvs = label_csv_inputs(cfg)
    records = index_images(cfg, folders)
    train, val = split_then_subset(records, cfg.val_fraction, cfg.seed, cfg.max_images) if records else ([], [])
    sources = None
    extra = [cfg.extra_sources] if isinstance(cfg.extra_sources, str) else list(cfg.extra_sources or [])
    if label_csvs or extra:  # label CSVs: their own patient split (source_split)
        sources = ["images"] * len(train)
        for csv_path in label_csvs + extra:
            given = csv_path in label_csvs  # an --images CSV's paths start at --image-root
            csv_train, csv_val = source_split(csv_path, cfg.val_fraction, cfg.seed,
                                              cfg.image_root if given else None)
            if given:
                csv_train, csv_val = _in_label_space(csv_path, *labelling_sides(csv_path, csv_train, csv_val))
            train = train + csv_train
            sources += [str(csv_path)] * len(csv_train)
            if given and not folders:  # the run's only labelled images: zero-shot validation is on its patients
                val = val + csv_val  # (beside image folders, a CSV's validation patients stay out, as --extra-sources)
    if not train:
        raise MedflipError("the training split is empty: add images or lower --val-fraction")
    if not folders:  # a CSV's validation classes are its films' rarest findings: only label-space names are
        val = [r for r in val if normalise_label_name(r.class_name) in CHEXPERT_LABELS]  # prompts the model knows
    names = sorted({r.class_name for r in records + val})
    if not folders and len(names) < 2:  # zero-shot validation compares classes: one CSV class gives nothing
        val = []
    class_map = load_class_map(cfg.class_map)
    prompts = [class_prompt(n, class_map) for n in names]
    pool = None
    if cfg.job == "pretrain" and cfg.corpus:
        if cfg.corpus_holdout > 0:  # train on the training reports only; the rest is for retrieval evaluation
            sentences, labels = labelled_corpus_part(cfg.corpus, "train", cfg.corpus_holdout, cfg.max_sentences,
                                                     cfg.seed)
        else:
            sentences, labels = labelled_sentences(cfg.corpus, cfg.max_sentences, cfg.seed)
        focus = np.clip(np.stack([r.labels for r in train]).max(axis=0), 0, None)
        pool = SentencePool(sentences, labels, tokenize, focus_labels=focus)
    return TrainingData(train=train, val=val, sentences=pool, class_names=names, class_prompts=prompts,
                        sources=sources)


def make_sampler(cfg: TrainConfig, data: TrainingData, batch_size: int) -> MixedSampler | None:
    """Per-source weights + class balance (medflip_core.data.sampling) when there are extra sources or weights;
    None keeps the epoch-wise shuffle of ImageBatches."""
    if data.sources is None and not cfg.source_weights:
        return None
    sources = data.sources or ["images"] * len(data.train)
    names = list(dict.fromkeys(sources))
    weights = None
    if cfg.source_weights and str(cfg.source_weights).strip().lower() == "size":
        weights = {n: float(sources.count(n)) for n in names}
    elif cfg.source_weights:
        try:
            values = [float(x) for x in str(cfg.source_weights).split(",")]
        except ValueError as exc:
            raise MedflipError(f"--source-weights must be numbers separated by commas, or 'size': {exc}") from exc
        if len(values) != len(names):
            raise MedflipError(f"--source-weights has {len(values)} value(s) for {len(names)} source(s): {names}")
        weights = dict(zip(names, values, strict=True))
    try:
        return MixedSampler(build_sources(sources, [balance_key(r.labels) for r in data.train]), batch_size, cfg.seed,
                            weights, balance_classes=cfg.sample_within_source == "class")
    except ValueError as exc:
        raise MedflipError(str(exc)) from exc


def _paired_data(cfg: TrainConfig) -> TrainingData:
    records = read_pairs_csv(cfg.pairs_csv, cfg.patient_pattern)
    train, val = split_then_subset(records, cfg.val_fraction, cfg.seed, cfg.max_images)
    if not train:
        raise MedflipError("the training split is empty: add pairs or lower --val-fraction")
    names = sorted({r.class_name for r in records})
    # zero-shot validation needs at least two classes among the reports' main labels
    val = val if len(names) >= 2 else []
    return TrainingData(train=train, val=val, sentences=None, class_names=names, class_prompts=names, paired=True)
