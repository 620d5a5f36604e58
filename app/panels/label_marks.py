"""The marks beside a zero-shot label, one spelling for the Zero-shot tab's bars and the Batch table's headers:
⚠ a label outside the model's labels (zeroshot.UNCALIBRATED_TIP), * one of its own that no validation figure backs
(validated_labels), ∥ one whose score rises and falls with how abnormal the film looks (label_specificity)."""

from __future__ import annotations

from medflip_core.inference.zeroshot import UNCALIBRATED_TIP


def label_marks(label: str, outside: bool, unvalidated: str | None = None,
                alike: str | None = None) -> tuple[str, str]:
    """(the suffix after the label's name, "" for none; its tooltip): `unvalidated` and `alike` are why, or None;
    a label outside the model's labels is not also starred (it has no figure to lack)."""
    why = [UNCALIBRATED_TIP] if outside else [unvalidated] if unvalidated else []
    why += [alike] if alike else []
    suffix = (" ⚠" if outside else " *" if unvalidated else "") + (" ∥" if alike else "")
    return suffix, (f"{label}: " + "; and ".join(why)) if why else label
