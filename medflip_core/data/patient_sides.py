"""Which patients a Labelling tab's labels.csv keeps for validation, readable wherever its labels train something.

The Labelling tab puts every patient once, by a seeded hash of the id, on the validation side (VALIDATION_SHARE of
patients) or the training side, and a classifier there moves training patients of a short class over
(filled_validation). Its classifiers are measured on the validation side, so anything else trained on the same CSV
(pre-training, fine-tuning a tower or a probe) must keep those patients out of its training side too: the rule
lives here, below the Labelling tab (medflip_core.labelling) and the fine-tuning and training code that both read it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

VALIDATION_SHARE = 0.25
LABELLING_CSV_COLUMNS = ("Image Index", "Finding Labels", "Patient ID", "Chosen By", "Labelled At")
MIN_PATIENTS_FOR_CLASSIFIER = 3  # per class, on each side (finetune.dataset.MIN_PATIENTS_PER_SIDE is this one)


def _draw(patient: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_validation_patient(patient: str, seed: int = 0, share: float = VALIDATION_SHARE) -> bool:
    """A patient's side, fixed by its id: the same on every reopening and in every order."""
    return _draw(patient, seed) < share


def filled_validation(patients: Sequence[str], labels: Sequence[Sequence[str]], validation: Sequence[bool],
                      classes: Sequence[str], need: int, seed: int = 0) -> tuple[list[bool], list[str]]:
    """The answers' sides for a classifier, with every class given `need` validation patients where its answers
    allow it: training patients of a short class move to the validation side (those whose draw came nearest to
    it first) as long as every class keeps `need` training patients. A quarter of 15 patients is 3.75 on
    average and often 2, and a fully labelled folder would otherwise never make a classifier.
    (sides per answer, the patients moved)."""
    side = {p: bool(v) for p, v in zip(patients, validation, strict=True)}
    carried: dict[str, set[str]] = {}
    for p, lbs in zip(patients, labels, strict=True):
        carried.setdefault(p, set()).update(lbs)

    def count(c: str, val: bool) -> int:
        return sum(1 for p, v in side.items() if v == val and c in carried[p])

    moved: list[str] = []
    for c in classes:
        candidates = sorted((p for p, v in side.items() if not v and c in carried[p]), key=lambda p: _draw(p, seed))
        for p in candidates:
            if count(c, True) >= need:
                break
            if all(count(other, False) > need for other in carried[p]):
                side[p] = True
                moved.append(p)
    return [side[p] for p in patients], moved


def csv_validation_patients(path: str | Path, need: int = MIN_PATIENTS_FOR_CLASSIFIER,
                            seed: int = 0) -> set[str] | None:
    """The patients a Labelling tab's labels.csv (LABELLING_CSV_COLUMNS) keeps for validation, for training
    elsewhere to hold out (None: not such a CSV): those its id draw puts there and those
    a classifier moves there (filled_validation, `need` per class), the rule run over the CSV's answers under both
    readings of a row (one class per film, or findings with "No Finding" for none), so never fewer than the
    Labelling tab holds out."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != LABELLING_CSV_COLUMNS:
        return None
    patients = [r[2] for r in rows[1:] if len(r) >= 3]
    answers = [[x for x in r[1].split("|") if x] for r in rows[1:] if len(r) >= 3]
    drawn = [is_validation_patient(p, seed) for p in patients]
    held = {p for p, v in zip(patients, drawn, strict=True) if v}
    for labels in (answers, [[x for x in a if x != "No Finding"] for a in answers]):
        classes = list(dict.fromkeys(x for a in labels for x in a))
        sides, _ = filled_validation(patients, labels, drawn, classes, need, seed)
        held |= {p for p, v in zip(patients, sides, strict=True) if v}
    return held
