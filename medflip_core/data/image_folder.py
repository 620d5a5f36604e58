"""ImageFolder layout (one sub-folder per class) indexed into records, with class-to-label mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.imaging import iter_image_files
from medflip_core.labeler.labels import CHEXPERT_LABELS, label_vector, normalise_label_name

# Class folder names we know, mapped into the label space. "PNEUMONIA" images in the Kermany set show
# airspace opacities, so they also carry Lung Opacity; NORMAL is the CheXpert "No Finding".
DEFAULT_CLASS_MAP: dict[str, tuple[str, ...]] = {
    "normal": ("No Finding",),
    "pneumonia": ("Pneumonia", "Lung Opacity"),
}

# Patient id from a file name: Kermany "person123_bacteria_456", "IM-0115-0001", "NORMAL2-IM-1419-0001";
# MIMIC/CheXpert-like "patient00001"; NIH ChestX-ray14 "00001234_005" (8-digit patient, image number).
# Files that match none are their own patient.
_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_", re.IGNORECASE),
    re.compile(r"^(\d{8})_\d+$"),
    re.compile(r"^(patient\d+)", re.IGNORECASE),
    re.compile(r"^(.*?IM-\d+)-\d+", re.IGNORECASE),
)


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    class_name: str
    patient_id: str
    labels: np.ndarray  # (14,) label vector of the class
    text: str = ""  # the paired report, in paired mode


def patient_id_from_name(name: str, pattern: str | None = None) -> str:
    """The patient a file belongs to, read from its name (`pattern`: a regex whose group 1 is the id)."""
    stem = Path(name).stem
    patterns = (re.compile(pattern),) if pattern else _PATIENT_PATTERNS
    for regex in patterns:
        match = regex.search(stem)
        if match:
            return match.group(1)
    return stem


def load_class_map(path: str | Path | None) -> dict[str, tuple[str, ...]]:
    """A JSON file {"FOLDER": ["Label", ...]} (or "Label"), merged over the defaults."""
    mapping = dict(DEFAULT_CLASS_MAP)
    if path is None:
        return mapping
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MedflipError(f"Cannot read the class mapping file {path}: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise MedflipError(f"The class mapping file {path} must hold a JSON object of folder -> labels.")
    for folder, labels in raw.items():
        names = (labels,) if isinstance(labels, str) else tuple(labels)
        mapping[str(folder).lower()] = names
    return mapping


def class_labels(class_name: str, class_map: Mapping[str, tuple[str, ...]]) -> np.ndarray:
    """Label vector of a class folder; an unknown name must be a label of the label space."""
    names = class_map.get(class_name.lower())
    if names is None:
        canonical = normalise_label_name(class_name)
        if canonical not in CHEXPERT_LABELS:
            raise MedflipError(
                f"Class folder '{class_name}' is not a label of the label space "
                f"({', '.join(CHEXPERT_LABELS)}); map it with a class-mapping JSON file."
            )
        names = (canonical,)
    try:
        return label_vector(names)
    except KeyError as exc:
        raise MedflipError(f"Class '{class_name}' maps to an unknown label {exc}.") from exc


def index_image_folder(
    root: str | Path,
    class_map: Mapping[str, tuple[str, ...]] | None = None,
    patient_pattern: str | None = None,
    require_labels: bool = True,
) -> list[ImageRecord]:
    """Every image under root/<class>/..., with its class labels and patient id.

    Raises MedflipError for a missing folder, a folder without class sub-folders, or an empty class.
    """
    root = Path(root)
    if not root.is_dir():
        raise MedflipError(f"The image folder {root} does not exist or is not a folder.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise MedflipError(f"{root} has no class sub-folders (expected e.g. {root}/NORMAL, {root}/PNEUMONIA).")
    mapping = DEFAULT_CLASS_MAP if class_map is None else class_map
    records: list[ImageRecord] = []
    for class_dir in classes:
        try:
            files = iter_image_files(class_dir)
        except MedflipError as exc:
            raise MedflipError(f"Class folder '{class_dir.name}' holds no images: {exc}") from exc
        labels = class_labels(class_dir.name, mapping) if require_labels else np.zeros(len(CHEXPERT_LABELS))
        for path in files:
            # Ids are not prefixed by class: equal ids in two class folders count as one patient, which can
            # only make the split more conservative, never leak a patient across it.
            pid = patient_id_from_name(path.name, patient_pattern)
            records.append(ImageRecord(path=path, class_name=class_dir.name, patient_id=pid, labels=labels))
    return records


def flat_folder_problem(root: str | Path, job: str = "pretrain",
                        unlabelled_words: str = "images without labels (--unlabelled)") -> str:
    """A sentence when `root` holds its films directly instead of one sub-folder per class, saying what such a
    folder can be used as ("" otherwise; a missing folder is index_image_folder's to say). A GUI walk: only the
    layout's name was said, and a study folder had to be reorganised by hand."""
    root = Path(root)
    try:
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    except OSError:
        return ""
    if any(p.is_dir() for p in entries) or not any(p.is_file() for p in entries):
        return ""
    uses = (f"give it as {unlabelled_words}, from which the reconstruction term learns; " if job == "pretrain"
            else "")
    return (f"The folder {root.name} holds its films directly, not in one sub-folder per class (such as NORMAL "
            f"and PNEUMONIA). To train on it, {uses}label its films (the Labelling tab writes a labels.csv, which "
            f"Images also takes); or sort them into class sub-folders. Folder: {root}")


def patient_split(
    records: list[ImageRecord], val_fraction: float, seed: int = 0
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Split by patient, stratified by class: no patient has images on both sides.

    Patients are grouped by their majority class and a `val_fraction` share of each group goes to validation.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise MedflipError(f"validation fraction must be in [0, 1), got {val_fraction}")
    by_patient: dict[str, list[ImageRecord]] = {}
    for rec in records:
        by_patient.setdefault(rec.patient_id, []).append(rec)
    groups: dict[str, list[str]] = {}
    for pid in sorted(by_patient):
        classes = [r.class_name for r in by_patient[pid]]
        majority = max(sorted(set(classes)), key=classes.count)
        groups.setdefault(majority, []).append(pid)
    rng = np.random.default_rng(seed)
    val_patients: set[str] = set()
    for cls in sorted(groups):
        pids = groups[cls]
        order = rng.permutation(len(pids))
        n_val = int(round(len(pids) * val_fraction))
        val_patients.update(pids[i] for i in order[:n_val])
    train = [r for r in records if r.patient_id not in val_patients]
    val = [r for r in records if r.patient_id in val_patients]
    return train, val


def materialise_split(records: list[ImageRecord], out_dir: str | Path) -> Path:
    """An ImageFolder of symbolic links (out_dir/<class>/<file>) for a list of records, e.g. a validation
    split, so that `medflip evaluate` can run on exactly the images training held out."""
    out = Path(out_dir)
    for rec in records:
        target = out / rec.class_name / rec.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(rec.path.resolve())
    return out


def split_then_subset(
    records: list[ImageRecord], val_fraction: float, seed: int = 0, max_images: int | None = None
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The patient split of ALL records, then at most `max_images` training images drawn from its training side.

    Subsetting after the split keeps the validation patients those of the full split (what `medflip split`
    writes with the same seed and fraction), so a smoke run never trains on a validation patient.
    """
    train, val = patient_split(records, val_fraction, seed)
    if max_images is not None and len(train) > max_images:
        picks = np.sort(np.random.default_rng(seed).choice(len(train), max_images, replace=False))
        train = [train[i] for i in picks]
    return train, val
