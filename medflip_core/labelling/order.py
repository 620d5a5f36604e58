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

from collections import Counter
from collections.abc import Sequence

import numpy as np

from medflip_core.data.patient_sides import is_validation_patient

ORDERS = ("uncertainty", "in order", "random")
ORDER_NAMES = {"uncertainty": "most useful (uncertainty, with random picks for validation)",
               "in order": "in order", "random": "random"}
RANDOM_SHARE = 0.25


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
