"""Labelled images from a CSV: NIH `Data_Entry_2017.csv` style or CheXpert `train.csv` style.

    table = read_label_csv("labels.csv", image_root="images/", labels=["No Finding", "Pneumonia"])
    train, val = split_table(table, val_fraction=0.15)        # by patient, never by image
    records = table.to_records()                               # ImageRecords in the CheXpert label space

NIH style: `Image Index`, `Finding Labels` (findings joined by "|", or "No Finding"), `Patient ID`.
CheXpert style: `Path` and one column per finding holding 1 (present), 0 (absent), -1 (uncertain) or blank
(not mentioned, read as absent). The patient comes from a patient column, else from the file name or path
(`patient_pattern`, a regex whose group 1 is the id; NIH 8 digits and CheXpert `patientNNNNN` are known).
Every problem a user can cause is a MedflipError naming rows and counts; unreadable images are found by
`drop_unreadable` and reported, never a crash.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from medflip_core.data.image_folder import ImageRecord, patient_id_from_name, patient_split
from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import CHEXPERT_LABELS, NIH_TO_CHEXPERT, label_vector, normalise_label_name

NIH_IMAGE, NIH_FINDINGS, NIH_PATIENT = "Image Index", "Finding Labels", "Patient ID"
CHEXPERT_PATH = "Path"
CHEXPERT_METADATA = ("Sex", "Age", "Frontal/Lateral", "AP/PA")
PATIENT_COLUMNS = ("Patient ID", "patient", "patient_id", "subject_id")
_CHEXPERT_PATIENT = re.compile(r"(patient\d+)", re.IGNORECASE)
_VALUES = {"1": 1.0, "1.0": 1.0, "0": 0.0, "0.0": 0.0, "-1": -1.0, "-1.0": -1.0, "": 0.0}


@dataclass(frozen=True)
class LabelTable:
    """Images with their patient and targets over `classes` (N, C): 1 present, 0 absent; multi-class rows are
    one-hot. `uncertain` marks CheXpert -1 entries (read as absent unless `uncertain="positive"`)."""

    images: list[Path]
    patients: list[str]
    classes: list[str]
    targets: np.ndarray
    multi_label: bool
    style: str  # "nih" | "chexpert"
    rows: list[int]  # CSV line of every image (the header is line 1)
    uncertain: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out

    def __len__(self) -> int:
        return len(self.images)

    @property
    def class_index(self) -> np.ndarray:
        """(N,) class of every image (multi-class tables only)."""
        if self.multi_label:
            raise ValueError("a multi-label table has no single class per image")
        return self.targets.argmax(axis=1)

    def subset(self, idx: Sequence[int]) -> LabelTable:
        idx = np.asarray(idx, dtype=int)
        return replace(self, images=[self.images[i] for i in idx], patients=[self.patients[i] for i in idx],
                       targets=self.targets[idx], rows=[self.rows[i] for i in idx],
                       uncertain=None if self.uncertain is None else self.uncertain[idx])

    def stratum(self, i: int) -> str:
        """A class name per image for stratified splitting: its class, or (multi-label) its rarest finding."""
        present = np.flatnonzero(self.targets[i] > 0)
        if not len(present):
            return "(none)"
        counts = self.targets.sum(axis=0)
        return self.classes[int(present[np.argmin(counts[present])])]

    def to_records(self) -> list[ImageRecord]:
        """ImageRecords whose label vectors are in the CheXpert label space (NIH names mapped by
        NIH_TO_CHEXPERT; findings without a CheXpert label carry no label)."""
        out = []
        for i, path in enumerate(self.images):
            names = [c for c, v in zip(self.classes, self.targets[i], strict=True) if v > 0]
            mapped = [m for n in names for m in label_space_names(n)]
            out.append(ImageRecord(path=path, class_name=self.stratum(i), patient_id=self.patients[i],
                                   labels=label_vector(sorted(set(mapped)))))
        return out


def label_space_names(name: str) -> tuple[str, ...]:
    """CheXpert label(s) of a CSV class name: NIH vocabulary through NIH_TO_CHEXPERT, else the name itself."""
    if name in NIH_TO_CHEXPERT:
        return NIH_TO_CHEXPERT[name]
    canonical = normalise_label_name(name)
    return (canonical,) if canonical in CHEXPERT_LABELS else ()


def _rows_text(rows: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return f"row{'s' if len(rows) > 1 else ''} {shown}{', …' if len(rows) > limit else ''}"


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return [f.strip() for f in (reader.fieldnames or [])], rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedflipError(f"cannot read the label file {path}: {exc}") from exc


def _find_image(root: Path, name: str) -> Path:
    path = Path(name)
    if path.is_absolute():
        return path
    for candidate in (root / path, root / "images" / path):
        if candidate.is_file():
            return candidate
    return root / path


def read_label_csv(
    path: str | Path, image_root: str | Path | None = None, labels: Sequence[str] | None = None,
    multi_label: bool | None = None, patient_column: str | None = None, patient_pattern: str | None = None,
    uncertain: str = "negative",
) -> LabelTable:
    """A label CSV (NIH or CheXpert style, detected from its columns) as a LabelTable.

    `labels`: the classes to keep (default: every finding in the file); rows with none of them are left out
    and counted in `dropped`. `multi_label` None: multi-label when some row has two of the classes.
    `uncertain` (CheXpert -1): "negative" or "positive". Image paths are relative to `image_root` (default: the
    CSV's folder; `images/` under it is tried too).
    """
    path = Path(path)
    if uncertain not in ("negative", "positive"):
        raise MedflipError(f"uncertain must be negative or positive, not {uncertain!r}")
    columns, rows = _read(path)
    root = Path(image_root) if image_root is not None else path.parent
    if image_root is not None and not root.is_dir():
        raise MedflipError(f"the image root {root} is not a folder")
    if not rows:
        raise MedflipError(f"{path.name} holds no rows")
    if NIH_IMAGE in columns and NIH_FINDINGS in columns:
        style, image_col = "nih", NIH_IMAGE
        vocabulary, raw, bad = _nih_targets(rows)
    elif CHEXPERT_PATH in columns:
        style, image_col = "chexpert", CHEXPERT_PATH
        vocabulary, raw, bad = _chexpert_targets(rows, columns)
    else:
        raise MedflipError(f"{path.name}: columns {columns} are neither NIH style ({NIH_IMAGE!r}, {NIH_FINDINGS!r}"
                           f", {NIH_PATIENT!r}) nor CheXpert style ({CHEXPERT_PATH!r} + one column per finding)")
    if bad:
        detail = "; ".join(f"line {line}: {msg}" for line, msg in bad[:5])
        raise MedflipError(f"{path.name}: {len(bad)} unknown value(s) in the label columns ({detail}); "
                           "allowed: 1, 0, -1 or blank")
    classes = _choose_classes(labels, vocabulary, path.name)
    col = [vocabulary.index(c) for c in classes]
    values = raw[:, col]
    targets = (values > 0) | ((values < 0) & (uncertain == "positive"))
    unsure = values < 0
    keep = np.flatnonzero(targets.any(axis=1))
    dropped = {}
    if len(keep) < len(rows):
        dropped["none of the classes"] = len(rows) - len(keep)
    if not len(keep):
        raise MedflipError(f"{path.name}: no row carries any of the classes {classes}")
    if multi_label is None:
        multi_label = bool((targets[keep].sum(axis=1) > 1).any())
    elif not multi_label:
        several = [i + 2 for i in keep if targets[i].sum() > 1]
        if several:
            raise MedflipError(f"{path.name}: {len(several)} row(s) carry two or more of the classes {classes} "
                               f"({_rows_text(several)}); choose multi-label or fewer classes")
    pcol = _patient_column(patient_column, columns, path.name)
    images, patients, missing = [], [], []
    for i in keep:
        name = (rows[i].get(image_col) or "").strip()
        image = _find_image(root, name)
        if not name or not image.is_file():
            missing.append(i + 2)
        images.append(image)
        given = (rows[i].get(pcol) or "").strip() if pcol else ""
        patients.append(given or _patient_from_path(name, patient_pattern, style))
    if missing:
        raise MedflipError(f"{path.name}: {len(missing)} of {len(keep)} image files are missing under {root} "
                           f"({_rows_text(missing)}, e.g. {images[list(keep).index(missing[0] - 2)]})")
    return LabelTable(images=images, patients=patients, classes=classes,
                      targets=targets[keep].astype(np.float32), multi_label=multi_label, style=style,
                      rows=[int(i) + 2 for i in keep], uncertain=unsure[keep], dropped=dropped)


def _nih_targets(rows: list[dict[str, str]]) -> tuple[list[str], np.ndarray, list[tuple[int, str]]]:
    findings = [[f.strip() for f in (r.get(NIH_FINDINGS) or "").split("|") if f.strip()] for r in rows]
    bad = [(i + 2, "empty Finding Labels") for i, f in enumerate(findings) if not f]
    vocabulary = sorted({f for fs in findings for f in fs})
    raw = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
    for i, fs in enumerate(findings):
        for f in fs:
            raw[i, vocabulary.index(f)] = 1.0
    return vocabulary, raw, bad


def _chexpert_targets(rows: list[dict[str, str]], columns: list[str]
                      ) -> tuple[list[str], np.ndarray, list[tuple[int, str]]]:
    vocabulary = [c for c in columns if c not in (CHEXPERT_PATH, *CHEXPERT_METADATA, *PATIENT_COLUMNS)]
    raw = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
    bad = []
    for i, row in enumerate(rows):
        for j, c in enumerate(vocabulary):
            value = (row.get(c) or "").strip()
            if value not in _VALUES:
                bad.append((i + 2, f"{c}={value!r}"))
            else:
                raw[i, j] = _VALUES[value]
    return vocabulary, raw, bad


def _choose_classes(labels: Sequence[str] | None, vocabulary: list[str], name: str) -> list[str]:
    if not labels:
        return list(vocabulary)
    by_key = {v.lower().replace("_", " "): v for v in vocabulary}
    chosen, unknown = [], []
    for lb in labels:
        key = lb.strip().lower().replace("_", " ")
        (chosen.append(by_key[key]) if key in by_key else unknown.append(lb))
    if unknown:
        raise MedflipError(f"{name}: unknown label(s) {unknown}; the file has {vocabulary}")
    return chosen


def _patient_column(given: str | None, columns: list[str], name: str) -> str | None:
    if given:
        if given not in columns:
            raise MedflipError(f"{name}: no patient column {given!r}; columns are {columns}")
        return given
    return next((c for c in PATIENT_COLUMNS if c in columns), None)


def _patient_from_path(name: str, pattern: str | None, style: str) -> str:
    if pattern is None and style == "chexpert":
        match = _CHEXPERT_PATIENT.search(name)
        if match:
            return match.group(1)
    return patient_id_from_name(Path(name).name, pattern)


def source_split(path: str | Path, val_fraction: float, seed: int = 0, image_root: str | Path | None = None
                 ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A label CSV as an extra TRAINING source: every finding of the file (mapped into the label space), split by
    patient. The one definition of a source's validation patients: training holds them out, and the model
    card's per-source figures are measured on them (`validation_patients`)."""
    table = read_label_csv(path, image_root=image_root, multi_label=True)
    train, val = split_table(table, val_fraction, seed, check=False)
    return train.to_records(), val.to_records()


def validation_patients(path: str | Path, val_fraction: float, seed: int = 0,
                        image_root: str | Path | None = None) -> set[str]:
    """Patients of a label CSV that a training run with this fraction and seed held out (see source_split)."""
    return {r.patient_id for r in source_split(path, val_fraction, seed, image_root)[1]}


def split_table(table: LabelTable, val_fraction: float, seed: int = 0,
                min_val_patients: int = 1, check: bool = True) -> tuple[LabelTable, LabelTable]:
    """Patient-disjoint split stratified by class (multi-label: by each image's rarest finding).

    Errors (with `check`): one class only; a class whose patients are too few to appear on both sides.
    """
    if check:
        _check_splittable(table, val_fraction, min_val_patients)
    records = [ImageRecord(path=p, class_name=table.stratum(i), patient_id=table.patients[i],
                           labels=np.zeros(0)) for i, p in enumerate(table.images)]
    index = {id(r): i for i, r in enumerate(records)}
    train, val = patient_split(records, val_fraction, seed)
    return table.subset([index[id(r)] for r in train]), table.subset([index[id(r)] for r in val])


def _check_splittable(table: LabelTable, val_fraction: float, min_val_patients: int) -> None:
    if len(table.classes) < 2:
        raise MedflipError(f"only one class ({table.classes[0]}): training a classifier needs two or more")
    present = table.targets.sum(axis=0)
    for c, n in zip(table.classes, present, strict=True):
        patients = {p for p, t in zip(table.patients, table.targets[:, table.classes.index(c)], strict=True)
                    if t > 0}
        if n == 0:
            raise MedflipError(f"class {c} has no images")
        if round(len(patients) * val_fraction) < min_val_patients or len(patients) < min_val_patients + 1:
            raise MedflipError(f"class {c} has {int(n)} image(s) of {len(patients)} patient(s): too few for a "
                               f"validation share of {val_fraction:.0%} (at least {min_val_patients} patient(s) "
                               "on the validation side and one for training)")


def drop_unreadable(table: LabelTable) -> tuple[LabelTable, list[str]]:
    """The table without images that cannot be decoded, and one message per skipped image."""
    from medflip_core.imaging import load_image

    keep, skipped = [], []
    for i, image in enumerate(table.images):
        try:
            load_image(image)
            keep.append(i)
        except MedflipError as exc:
            skipped.append(f"line {table.rows[i]}: {exc}")
    return table.subset(keep), skipped


def materialise_classes(table: LabelTable, out_dir: str | Path, folder_names: dict[str, str] | None = None) -> Path:
    """An ImageFolder of symbolic links (out_dir/<class>/<file>) of a multi-class table, so that `medflip evaluate`
    runs on exactly these images. `folder_names` renames classes (e.g. {"No Finding": "NORMAL"})."""
    if table.multi_label:
        raise MedflipError("an ImageFolder holds one class per image: read the CSV with two exclusive classes")
    out = Path(out_dir)
    names = folder_names or {}
    for image, ci in zip(table.images, table.class_index, strict=True):
        target = out / names.get(table.classes[ci], table.classes[ci]) / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(image.resolve())
    return out


def held_out_class_folder(path: str | Path, labels: Sequence[str], val_fraction: float, seed: int, out_dir: str | Path,
                          folder_names: dict[str, str] | None = None) -> Path:
    """The patients a training run with this fraction and seed held out of a label CSV, as an ImageFolder of the
    exclusive `labels` (e.g. pneumonia vs no finding), so `medflip evaluate` scores exactly the unseen patients."""
    held_out = validation_patients(path, val_fraction, seed)
    table = read_label_csv(path, labels=labels)
    table = table.subset([i for i, p in enumerate(table.patients) if p in held_out])
    return materialise_classes(table, out_dir, folder_names)
