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


# NIH ChestX-ray14 findings in the CheXpert label space: the one place this mapping lives.
# Exact: Effusion = Pleural Effusion; Atelectasis, Cardiomegaly, Consolidation, Edema, Pneumonia, Pneumothorax.
# Approximate (a choice, written down): Infiltration ~ Lung Opacity (NIH "infiltration" is an opacity of the
# parenchyma; CheXpert folds such opacities into Lung Opacity); Mass and Nodule ~ Lung Lesion (CheXpert's
# lesion label covers both); Pleural_Thickening ~ Pleural Other. Pneumonia and Consolidation also carry Lung
# Opacity, as CheXpert's hierarchy does (and as the Kermany PNEUMONIA folder is labelled).
# No CheXpert label: Emphysema, Fibrosis, Hernia (empty tuple: the image carries none of its own findings).
NIH_TO_CHEXPERT: dict[str, tuple[str, ...]] = {
    "No Finding": ("No Finding",),
    "Atelectasis": ("Atelectasis",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Consolidation": ("Consolidation", "Lung Opacity"),
    "Edema": ("Edema",),
    "Effusion": ("Pleural Effusion",),
    "Infiltration": ("Lung Opacity",),
    "Mass": ("Lung Lesion",),
    "Nodule": ("Lung Lesion",),
    "Pleural_Thickening": ("Pleural Other",),
    "Pneumonia": ("Pneumonia", "Lung Opacity"),
    "Pneumothorax": ("Pneumothorax",),
    "Emphysema": (),
    "Fibrosis": (),
    "Hernia": (),
}
