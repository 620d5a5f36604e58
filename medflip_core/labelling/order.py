"""Which film next.

Every patient is assigned once, at random (seeded by the patient id), to the validation side (VALIDATION_SHARE of
patients) or the training side; the answers of validation patients never train the head, so every later split is
by patient. Orders:
- "uncertainty" (default): a fixed share of the picks (RANDOM_SHARE: picks 4, 8, 12, ...) is a film drawn at random
  among the validation patients' unlabelled films, so the validation estimate is an unbiased sample of the folder;
  every other pick is, among the training patients' films, the one the current head is least sure of (normalised
  entropy; findings: mean over the findings), down-weighted by half for every film of its patient already
  answered (patient diversity);
- "in order": the folder's order (file names);
- "random": a seeded random order.
Flagged films (out of distribution, duplicates, unreadable) are never offered, nor films answered or skipped.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medflip_core.labelling.journal import CSV_COLUMNS

ORDERS = ("uncertainty", "in order", "random")
ORDER_NAMES = {"uncertainty": "most useful (uncertainty, with random picks for validation)",
               "in order": "in order", "random": "random"}
RANDOM_SHARE = 0.25
VALIDATION_SHARE = 0.25


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


def is_random_pick(pick: int, share: float = RANDOM_SHARE) -> bool:
    """Pick number `pick` (0-based answers so far) is a random one: exactly `share` of the picks, spread evenly."""
    return int((pick + 1) * share) > int(pick * share)


def uncertainty(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """(N,) in [0, 1]: normalised entropy of each film's probabilities (findings: mean binary entropy)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-9, 1 - 1e-9)
    if multi_label:
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
        return h.mean(axis=1)
    return -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])


def _rng(seed: int, pick: int) -> np.random.Generator:
    return np.random.default_rng([seed, pick])


def next_film(order: str, available: Sequence[int], patients: Sequence[str], answered_patients: Counter,
              pick: int, probs: np.ndarray | None, multi_label: bool, seed: int = 0,
              validation: Sequence[bool] | None = None) -> tuple[int | None, str]:
    """(film index or None when none is left, how it was chosen: the CSV's `Chosen By`).

    `available`: indices of films that may be offered; `pick`: how many answers were given so far;
    `probs`: the current head's probabilities for every film (rows of unembedded films may be NaN)."""
    available = list(available)
    if not available:
        return None, ""
    if order == "in order":
        return min(available), "in order"
    if order == "random":
        return int(_rng(seed, pick).choice(available)), "random"
    if order != "uncertainty":
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    val = validation if validation is not None else [is_validation_patient(p, seed) for p in patients]
    val_films = [i for i in available if val[i]]
    train_films = [i for i in available if not val[i]]
    if (is_random_pick(pick) and val_films) or not train_films:
        pool = val_films or train_films
        return int(_rng(seed, pick).choice(pool)), "random (validation)"
    scored = [i for i in train_films if probs is not None and np.isfinite(probs[i]).all()]
    if not scored:
        return min(train_films), "in order (no scores yet)"
    u = uncertainty(probs[scored], multi_label)
    weight = np.array([0.5 ** answered_patients.get(patients[i], 0) for i in scored])
    best = int(np.argmax(u * weight))
    return scored[best], "uncertainty"


def csv_validation_patients(path: str | Path, need: int, seed: int = 0) -> set[str] | None:
    """The patients a Labelling tab's labels.csv (medflip_core.labelling.journal.CSV_COLUMNS) keeps for
    validation, for training elsewhere to hold out (None: not such a CSV): those its id draw puts there and those
    a classifier moves there (filled_validation, `need` per class), the rule run over the CSV's answers under both
    readings of a row (one class per film, or findings with "No Finding" for none), so never fewer than the
    Labelling tab holds out."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != tuple(CSV_COLUMNS):
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
