"""Warnings for images unlike the ones a model was trained on, read from the image's metadata."""

from __future__ import annotations

import re
from collections.abc import Sequence

from medflip_core.imaging import ImageMetadata

CHEST_BODY_PARTS = {"", "CHEST", "THORAX", "LUNG", "PORT CHEST", "CHEST_LAT", "CHEST_PA"}
RADIOGRAPH_MODALITIES = {"", "CR", "DX", "DR", "OT", "RG"}
_ANIMAL = re.compile(r"\b(canine|feline|equine|bovine|porcine|veterinary|dog|cat|horse)\b", re.IGNORECASE)
_LATERAL = re.compile(r"\blat(?:eral)?\b", re.IGNORECASE)


def out_of_distribution(md: ImageMetadata) -> list[str]:
    """Reasons to distrust scores for this image (the default model saw frontal human chest radiographs)."""
    flags = []
    if md.body_part and md.body_part.upper() not in CHEST_BODY_PARTS:
        flags.append(f"body part {md.body_part} is not a chest: the model has only seen chest radiographs")
    if md.modality and md.modality.upper() not in RADIOGRAPH_MODALITIES:
        flags.append(f"modality {md.modality} is not a radiograph")
    described = " ".join((md.species, md.acquisition_description, md.study_description, md.series_description))
    animal = _ANIMAL.search(described)
    if (md.species and md.species.lower() not in ("homo sapiens", "human")) or animal:
        what = md.species or animal.group(0)
        flags.append(f"not a human patient ({what}): the model has only seen human radiographs")
    if md.view_position.upper() in ("LL", "RL", "LAT", "LATERAL") or _LATERAL.search(md.acquisition_description):
        flags.append("lateral view: the model has only seen frontal (AP/PA) chest radiographs")
    return flags


def brief(reasons: Sequence[str]) -> str:
    """The reasons in a few words each, for a table cell or a list line ("body part EXTREMITY is not a chest;
    lateral view"); the full sentences belong in a tooltip or the CSV."""
    from medflip_core.inference.image_ood import FAR, FAR_BRIEF

    return "; ".join(FAR_BRIEF if r.startswith(FAR) else r.split(":", 1)[0] for r in reasons)
