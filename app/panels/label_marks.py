"""The marks beside a zero-shot label, one spelling for the Zero-shot tab's bars and the Batch table's headers:
† a label outside the model's labels (zeroshot.UNCALIBRATED_TIP), * one of its own that no validation figure backs
(validated_labels), ∥ one whose score rises and falls with how abnormal the film looks (label_specificity).
⚠ is kept for warnings about the image (not a chest film, inverted, …): a GUI walk read one sign with two meanings."""

from __future__ import annotations

from html import escape

from medflip_core.inference.zeroshot import UNCALIBRATED_TIP

OUTSIDE, UNVALIDATED, ALIKE = "†", "*", "∥"
LEGEND = {UNVALIDATED: "no validation figure backs it", ALIKE: "its score follows how abnormal the film looks, not "
          "a finding", OUTSIDE: "not one of the model's labels: a score, not a probability"}


def wrapped(tip: str) -> str:
    """A tooltip Qt wraps at a readable width (plain text is one line: a GUI walk saw a 1,255 px tooltip)."""
    return "<qt>" + escape(tip, quote=False).replace("\n", "<br>") + "</qt>"


def marks_legend(marks: set[str]) -> str:
    """One line for the marks in use, e.g. "* no validation figure backs it · ∥ … (hover a name for why)"."""
    shown = [f"{mark} {LEGEND[mark]}" for mark in (UNVALIDATED, ALIKE, OUTSIDE) if mark in marks]
    return " · ".join(shown) + " (hover a name for why)." if shown else ""


def label_marks(label: str, outside: bool, unvalidated: str | None = None,
                alike: str | None = None) -> tuple[str, str]:
    """(the suffix after the label's name, "" for none; its tooltip, the label then one line per mark with its
    reason): `unvalidated` and `alike` are why, or None; a label outside the model's labels is not also starred (it
    has no figure to lack)."""
    why = [(OUTSIDE, UNCALIBRATED_TIP)] if outside else [(UNVALIDATED, unvalidated)] if unvalidated else []
    why += [(ALIKE, alike)] if alike else []
    suffix = "".join(f" {mark}" for mark, _ in why)
    return suffix, "\n".join([label, *(f"{mark} {reason}" for mark, reason in why)])
