"""Paired data: a CSV of image path + report text (+ optional patient id), labelled by the labeler."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medflip_core.data.image_folder import ImageRecord, patient_id_from_name
from medflip_core.errors import MedflipError
from medflip_core.labeler import label_report
from medflip_core.labeler.labels import CHEXPERT_LABELS

IMAGE_COLUMNS = ("image", "path", "image_path", "file", "filename")
TEXT_COLUMNS = ("report", "text", "findings", "impression")
PATIENT_COLUMNS = ("patient", "patient_id", "subject_id")


def _column(fields: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((fields[n] for n in names if n in fields), None)


def read_pairs_csv(path: str | Path, patient_pattern: str | None = None) -> list[ImageRecord]:
    """Rows of (image, report); relative image paths are taken from the CSV's folder."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = {f.lower().strip(): f for f in (reader.fieldnames or [])}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedflipError(f"cannot read the pairs file {path}: {exc}") from exc
    image_col, text_col = _column(fields, IMAGE_COLUMNS), _column(fields, TEXT_COLUMNS)
    if image_col is None or text_col is None:
        raise MedflipError(f"{path.name} needs an image column ({', '.join(IMAGE_COLUMNS)}) and a report column "
                           f"({', '.join(TEXT_COLUMNS)})")
    patient_col = _column(fields, PATIENT_COLUMNS)
    records = []
    for row in rows:
        image = Path(row[image_col].strip())
        image = image if image.is_absolute() else path.parent / image
        text = (row.get(text_col) or "").strip()
        if not text:
            continue
        labels = label_report(text)
        positives = np.flatnonzero(labels > 0)
        class_name = CHEXPERT_LABELS[int(positives[0])] if len(positives) else "No Finding"
        patient = (row.get(patient_col) or "").strip() if patient_col else ""
        records.append(ImageRecord(path=image, class_name=class_name,
                                   patient_id=patient or patient_id_from_name(image.name, patient_pattern),
                                   labels=labels, text=text))
    if not records:
        raise MedflipError(f"{path.name} holds no rows with both an image and a report")
    return records
