"""One spelling of the marks beside a zero-shot label, for the Zero-shot bars and the Batch headers: † for a label
outside the model's labels (⚠ is left to warnings about the image), one tooltip line per mark."""

from __future__ import annotations

from app.panels.label_marks import label_marks, marks_legend
from medflip_core.inference.zeroshot import UNCALIBRATED_TIP


def test_marks_and_their_reasons():
    assert label_marks("Pneumonia", False) == ("", "Pneumonia")
    assert label_marks("Edema", False, "not validated") == (" *", "Edema\n* not validated")
    suffix, tip = label_marks("COVID-19", True, "never starred: it has no figure to lack", "moves with abnormality")
    assert suffix == " † ∥" and tip == f"COVID-19\n† {UNCALIBRATED_TIP}\n∥ moves with abnormality"
    assert label_marks("Cardiomegaly", False, "not validated", "moves with abnormality")[0] == " * ∥"
    assert "⚠" not in suffix + tip


def test_the_legend_names_only_the_marks_in_use_in_one_order():
    assert marks_legend(set()) == ""
    line = marks_legend({"∥", "*"})
    assert line.startswith("* no validation figure") and "∥ its score follows how abnormal" in line
    assert "†" not in line and line.endswith("(hover a name for why).")
    assert marks_legend({"†"}).startswith("† not one of the model's labels")


def test_a_tooltip_wraps_and_keeps_its_words():
    from app.panels.label_marks import wrapped

    tip = label_marks("COVID-19", True, None, "the film's <abnormality>")[1]
    shown = wrapped(tip)
    assert shown.startswith("<qt>COVID-19<br>† ") and shown.endswith("the film's &lt;abnormality&gt;</qt>")
