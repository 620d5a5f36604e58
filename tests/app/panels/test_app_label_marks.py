"""One spelling of the marks beside a zero-shot label, for the Zero-shot bars and the Batch headers."""

from __future__ import annotations

from app.panels.label_marks import label_marks
from medflip_core.inference.zeroshot import UNCALIBRATED_TIP


def test_marks_and_their_reasons():
    assert label_marks("Pneumonia", False) == ("", "Pneumonia")
    assert label_marks("Edema", False, "not validated") == (" *", "Edema: not validated")
    suffix, tip = label_marks("COVID-19", True, "never starred: it has no figure to lack", "moves with abnormality")
    assert suffix == " ⚠ ∥" and tip == f"COVID-19: {UNCALIBRATED_TIP}; and moves with abnormality"
    assert label_marks("Cardiomegaly", False, "not validated", "moves with abnormality")[0] == " * ∥"
