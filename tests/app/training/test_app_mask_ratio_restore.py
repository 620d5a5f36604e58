"""Issue 31 item 9, "mask ratio 1.5 silently becomes 0.50", in the GUI: a mask ratio the Training form cannot
hold (saved settings edited by hand or by another version, a run's config.json) is not clamped into the field;
the field keeps its value and the form says what was refused and the allowed range. The Mask sampling tab's
slider offers only the trainer's range. The command-line side: tests/medflip_core/test_mask_ratio_range.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.training.form import TrainingForm
from medflip_core.masking import MAX_MASK_RATIO


def test_a_saved_mask_ratio_of_1_5_is_refused_in_a_sentence_not_clamped(qtbot):
    from app.window.main_window import MainWindow

    settings = Path(os.environ["MEDFLIP_CONFIG_DIR"]) / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"training_form": {"job": "pretrain", "mask": 1.5, "budget": 45}}))
    window = MainWindow()
    qtbot.addWidget(window)
    form = window.training.form
    assert form.mask.value() == pytest.approx(0.75)  # the form's own default, not 0.9 (the clamp) nor 0.5
    assert form.budget.value() == pytest.approx(45)  # the values that fit are restored
    window.tabs.setCurrentWidget(window.training)
    window.show()
    qtbot.waitUntil(form.notice.isVisible)
    said = form.notice.text()
    assert "Mask ratio" in said and "1.5" in said and f"0 to {MAX_MASK_RATIO:g}" in said and "keeps 0.75" in said
    form.corpus.setText("")  # no Reports: a sentence in the form's words, not the trainer's "--corpus" refusal
    with pytest.raises(ValueError, match=r"choose the Reports .* bundled at .*NLMCXR_reports\.tgz"):
        form.pretrain_args("run")
    form.corpus.setText("reports.tgz")
    args = form.pretrain_args("run")
    assert args[args.index("--corpus") + 1] == "reports.tgz"
    assert args[args.index("--mask-ratio") + 1] == "0.75"  # what the field shows is what a new run gets
    assert window.mask_view.ratio.maximum() == round(MAX_MASK_RATIO * 100)  # the Mask tab offers the same range
    window.close()


def test_a_runs_config_with_a_ratio_the_field_cannot_hold_is_named(qtbot):
    form = TrainingForm()
    qtbot.addWidget(form)
    form.mask.setValue(0.6)
    form.show_run_config({"images": ["/data/a"], "mask_ratio": 1.5, "batch_size": 8, "max_steps": 10})
    assert form.mask.value() == pytest.approx(0.6) and form.batch.value() == 8
    assert "run's settings" in form.notice.text() and "1.5 is outside the allowed range 0 to 0.9" in form.notice.text()
    assert not form.notice.isHidden()
    form.show_run_config({"images": ["/data/a"], "mask_ratio": 0.5})  # a run that fits: nothing to say
    assert form.mask.value() == pytest.approx(0.5) and form.notice.text() == ""
    # a run on a label CSV: the form shows where its image paths start (a resumed run's form says what it runs)
    form.show_run_config({"images": ["/data/labels.csv"], "image_root": "/data/films", "mask_ratio": 0.5,
                          "init_from": "/data/a-model"})
    assert form.images.text() == "/data/labels.csv" and form.image_root.text() == "/data/films"
    assert form.start_from.currentData() == "/data/a-model"  # what the run started from, not today's default
    form.show_run_config({"images": ["/data/a"], "init_from": None})
    assert form.start_from.currentText() == "random weights (from scratch)"
