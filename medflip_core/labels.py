"""The label space shared by images, reports, prompts and the model: the 14 CheXpert observations."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CHEXPERT_LABELS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CHEXPERT_LABELS)}

# Values of a label vector entry, as the CheXpert labeler writes them.
POSITIVE = 1.0
NEGATIVE = 0.0
UNCERTAIN = -1.0  # mentioned with hedging ("may represent atelectasis")


def normalise_label_name(name: str) -> str:
    """Map a loosely written label ("pleural_effusion", "NORMAL") to its canonical name if it has one."""
    key = name.strip().replace("_", " ").replace("-", " ").lower()
    aliases = {"normal": "No Finding", "no finding": "No Finding", "effusion": "Pleural Effusion"}
    if key in aliases:
        return aliases[key]
    for canonical in CHEXPERT_LABELS:
        if canonical.lower() == key:
            return canonical
    return name.strip()


def label_vector(positives: Iterable[str], uncertain: Iterable[str] = ()) -> np.ndarray:
    """A float32 vector over CHEXPERT_LABELS with 1 for positives and UNCERTAIN for hedged ones."""
    vec = np.zeros(len(CHEXPERT_LABELS), dtype=np.float32)
    for name in uncertain:
        vec[LABEL_INDEX[normalise_label_name(name)]] = UNCERTAIN
    for name in positives:
        vec[LABEL_INDEX[normalise_label_name(name)]] = POSITIVE
    return vec
