"""Labelled images for fine-tuning: one in-memory form for ImageFolders and label CSVs, and the patient split.

An ImageFolder gives one class per image (multi-class); a label CSV can give several (multi-label). The
patient of every image drives the split, so no patient has images on both sides.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medflip_core.data.image_folder import ImageRecord, index_image_folder, patient_split
from medflip_core.data.patient_sides import MIN_PATIENTS_FOR_CLASSIFIER, csv_validation_patients
from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import normalise_label_name

# A class needs this many patients on each side of the split: fewer cannot give a threshold or an AUC.
MIN_PATIENTS_PER_SIDE = MIN_PATIENTS_FOR_CLASSIFIER  # the Labelling tab's classifiers need what a probe does


def loose_key(name: str) -> str:
    """Class names compared loosely: folder `PNEUMONIA` = class `Pneumonia`, `NORMAL` = `No Finding`,
    `pleural_effusion` = `Pleural Effusion`."""
    return re.sub(r"[^a-z0-9]+", " ", normalise_label_name(name).lower()).strip()


def match_classes(wanted: list[str], available: list[str], what: str) -> list[str]:
    """The available names that `wanted` names loosely, in the order of `wanted`; unknown names are an error."""
    by_key = {loose_key(a): a for a in available}
    unknown = [w for w in wanted if loose_key(w) not in by_key]
    if unknown:
        raise MedflipError(f"unknown {what}: {', '.join(unknown)} (available: {', '.join(available)})")
    chosen = [by_key[loose_key(w)] for w in wanted]
    if len(set(chosen)) != len(chosen):
        raise MedflipError(f"the {what} list names the same class twice: {', '.join(wanted)}")
    return chosen


@dataclass
class LabelledSet:
    """Images with their patients and targets: (N,) class indices, or (N, C) 0/1 when multi-label."""

    paths: list[Path]
    patients: list[str]
    classes: list[str]
    targets: np.ndarray
    multi_label: bool
    source: str
    notes: list[str] = field(default_factory=list)  # rows left out and why (shown to the user)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx: np.ndarray | list[int]) -> LabelledSet:
        idx = np.asarray(idx, dtype=int)
        return LabelledSet([self.paths[i] for i in idx], [self.patients[i] for i in idx], list(self.classes),
                           self.targets[idx], self.multi_label, self.source, list(self.notes))

    def indicator(self) -> np.ndarray:
        """(N, C) 0/1 for both kinds: one-hot rows for multi-class."""
        if self.multi_label:
            return self.targets.astype(np.int64)
        return np.eye(len(self.classes), dtype=np.int64)[self.targets]

    def class_patient_counts(self) -> dict[str, int]:
        """Patients with at least one image positive for each class."""
        ind = self.indicator()
        return {c: len({p for p, row in zip(self.patients, ind[:, ci], strict=True) if row})
                for ci, c in enumerate(self.classes)}


def from_image_folder(root: str | Path, classes: list[str] | None = None,
                      patient_pattern: str | None = None) -> LabelledSet:
    """An ImageFolder (root/<class>/<images>) as a multi-class set; `classes` picks (loosely named) folders."""
    records = index_image_folder(root, patient_pattern=patient_pattern, require_labels=False)
    folders = sorted({r.class_name for r in records})
    chosen = match_classes(classes, folders, "class folder") if classes else folders
    index = {c: i for i, c in enumerate(chosen)}
    kept = [r for r in records if r.class_name in index]
    notes = []
    left_out = Counter(r.class_name for r in records if r.class_name not in index)
    if left_out:
        notes.append("left out class folders not asked for: "
                     + ", ".join(f"{c} ({n} images)" for c, n in sorted(left_out.items())))
    return LabelledSet(paths=[r.path for r in kept], patients=[r.patient_id for r in kept], classes=chosen,
                       targets=np.array([index[r.class_name] for r in kept], dtype=np.int64), multi_label=False,
                       source=str(Path(root).resolve()), notes=notes)


def check_trainable(data: LabelledSet) -> None:
    """Refuse a set that cannot make a classifier: fewer than two classes, or a class without images."""
    if len(data.classes) < 2 and not data.multi_label:
        raise MedflipError(f"{data.source}: only one class ({', '.join(data.classes) or 'none'}); a classifier "
                           "needs at least two (e.g. NORMAL and PNEUMONIA folders).")
    ind = data.indicator()
    empty = [c for ci, c in enumerate(data.classes) if not ind[:, ci].any()]
    if empty:
        raise MedflipError(f"{data.source}: no images for class(es) {', '.join(empty)}.")
    if data.multi_label:
        always = [c for ci, c in enumerate(data.classes) if ind[:, ci].all()]
        if always:
            raise MedflipError(f"{data.source}: every image is positive for {', '.join(always)}; a label needs "
                               "negative images too.")


def _strata(data: LabelledSet) -> list[str]:
    """What the split balances: the class (multi-class) or the rarest positive label of the image."""
    if not data.multi_label:
        return [data.classes[t] for t in data.targets]
    ind = data.indicator()
    order = np.argsort(ind.sum(axis=0), kind="stable")  # rarest label first
    out = []
    for row in ind:
        pos = [data.classes[ci] for ci in order if row[ci]]
        out.append(pos[0] if pos else "(none)")
    return out


def split_by_patient(data: LabelledSet, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), patient-disjoint and stratified (the project's one patient split).

    Raises MedflipError naming the class when a side has fewer than MIN_PATIENTS_PER_SIDE of its patients.
    """
    strata = _strata(data)
    records = [ImageRecord(path=p, class_name=s, patient_id=pid, labels=np.zeros(0))
               for p, s, pid in zip(data.paths, strata, data.patients, strict=True)]
    index = {id(r): i for i, r in enumerate(records)}
    train, val = patient_split(records, val_fraction, seed)
    train_idx = np.array(sorted(index[id(r)] for r in train), dtype=int)
    val_idx = np.array(sorted(index[id(r)] for r in val), dtype=int)
    check_split(data, train_idx, val_idx, f"validation fraction {val_fraction}")
    return train_idx, val_idx


def split_by_given_patients(data: LabelledSet, val_patients: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices with exactly the given patients on the validation side, e.g. the patients a
    base model held out of its own training, so that the probe is judged on patients neither has seen."""
    in_val = np.array([pid in val_patients for pid in data.patients])
    if not in_val.any():
        raise MedflipError(f"none of the {len(val_patients)} given validation patients is in {data.source}")
    train_idx, val_idx = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    check_split(data, train_idx, val_idx, f"{len(set(data.patients) & val_patients)} given validation patients")
    return train_idx, val_idx


@dataclass(frozen=True)
class PatientSplit:
    """A fine-tune's two sides, the rule that chose them (the card's split line) and the validation figures' data
    set, in the same words (a GUI walk read "validation split of labels.csv" in the results and "the Labelling
    tab's validation patients" in the log)."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    rule: str
    data_set: str


LABELLING_RULE = ("the Labelling tab's validation patients of this labels.csv (its classifiers are measured on "
                  "them, so no fine-tune of the same labels trains on them)")


def split_for_finetune(data: LabelledSet, source: str | Path, val_patients: set[str] | None,
                       val_fraction: float, seed: int) -> PatientSplit:
    """The validation side of a fine-tune: the patients given; else, for a Labelling tab's labels.csv, the
    patients the Labelling tab keeps for validation (a split of its own would train on some of them, and the
    Labelling tab's figures and this classifier's would both be optimistic); else the seeded patient split."""
    if val_patients:
        train_idx, val_idx = split_by_given_patients(data, val_patients)
        return PatientSplit(train_idx, val_idx, f"the {len(set(data.patients) & val_patients)} patients given "
                                                "(--val-patients)", f"the given validation patients of {data.source}")
    held = csv_validation_patients(source) if Path(source).is_file() else None
    if held is not None:
        if not held & set(data.patients):
            raise MedflipError(f"{source}: none of its patients is on the Labelling tab's validation side yet (it "
                               "keeps a quarter of the patients, drawn by id, to measure classifiers on): label "
                               "films of more patients first")
        train_idx, val_idx = split_by_given_patients(data, held)
        return PatientSplit(train_idx, val_idx, LABELLING_RULE,
                            f"the Labelling tab's validation patients of {data.source}")
    train_idx, val_idx = split_by_patient(data, val_fraction, seed)
    return PatientSplit(train_idx, val_idx, f"validation fraction {val_fraction}, seed {seed}",
                        f"validation split of {data.source}")


def read_patient_list(path: str | Path) -> set[str]:
    """Patient ids, one a line (blank lines and `#` comments ignored), e.g. the patients a base model held out."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MedflipError(f"cannot read the patient list {path}: {exc.strerror or exc}") from exc
    ids = {x.split("#", 1)[0].strip() for x in lines} - {""}
    if not ids:
        raise MedflipError(f"the patient list {path} names no patient")
    return ids


def check_split(data: LabelledSet, train_idx: np.ndarray, val_idx: np.ndarray, rule: str) -> None:
    """Every class needs MIN_PATIENTS_PER_SIDE patients on each side; the error names the class and counts, and
    `rule`, how the validation side was chosen."""
    for side, idx in (("validation", val_idx), ("training", train_idx)):
        counts = data.subset(idx).class_patient_counts() if len(idx) else dict.fromkeys(data.classes, 0)
        few = {c: n for c, n in counts.items() if n < MIN_PATIENTS_PER_SIDE}
        if few:
            total = data.class_patient_counts()
            raise MedflipError(
                "too few patients for a patient-disjoint split: "
                + ", ".join(f"class {c} has {n} {side} patient(s) ({total[c]} in all)" for c, n in few.items())
                + f"; each class needs at least {MIN_PATIENTS_PER_SIDE} patients on each side "
                f"(validation: {rule}). Add images of more patients or leave the class out.")


def load_labelled(source: str | Path, image_root: str | Path | None = None, labels: list[str] | None = None,
                  patient_pattern: str | None = None) -> LabelledSet:
    """An ImageFolder (a folder) or a label CSV (a .csv file, read by medflip_core.data.label_csv)."""
    path = Path(source)
    if path.is_dir():
        if image_root is not None:
            raise MedflipError("--image-root is for label CSVs; an ImageFolder's images are under its class folders.")
        return from_image_folder(path, labels, patient_pattern)
    if path.is_file() and path.suffix.lower() == ".csv":
        return from_label_csv(path, image_root, labels, patient_pattern)
    if not path.exists():
        raise MedflipError(f"{path}: no such folder or file.")
    raise MedflipError(f"{path} is neither an ImageFolder (a folder with one sub-folder per class) nor a label CSV.")


def from_label_csv(path: Path, image_root: str | Path | None, labels: list[str] | None,
                   patient_pattern: str | None) -> LabelledSet:
    """A label CSV through medflip_core.data.label_csv (NIH or CheXpert style; the patient column, else the file
    name, gives the patient). Asked classes are matched loosely to the file's findings (`normal` = `No Finding`);
    a row with two of them makes the set multi-label; rows with none are left out and reported."""
    from medflip_core.data.label_csv import read_label_csv

    chosen = None
    if labels:
        vocabulary = read_label_csv(path, image_root=image_root, patient_pattern=patient_pattern).classes
        chosen = match_classes(labels, vocabulary, f"label of {path.name}")
    table = read_label_csv(path, image_root=image_root, labels=chosen, patient_pattern=patient_pattern)
    targets = table.targets.astype(np.int64) if table.multi_label else table.class_index.astype(np.int64)
    notes = [f"left out {n} row(s) of {path.name}: {why}" for why, n in table.dropped.items()]
    if table.style == "chexpert" and table.uncertain is not None and table.uncertain.any():
        notes.append(f"{int(table.uncertain.any(axis=1).sum())} row(s) with uncertain (-1) labels read as absent")
    return LabelledSet(paths=list(table.images), patients=list(table.patients), classes=list(table.classes),
                       targets=targets, multi_label=table.multi_label, source=str(path.resolve()), notes=notes)
