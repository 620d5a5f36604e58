"""A GUI walk: with "the model's own prompts" the template box listed three generic templates while the bundled model
applied its own prompt set, and adding a line made "your own (4)" of those three. The box shows what is used: the
model's own templates (scoring exactly the texts the model uses, with its decision rule), or, for a prompt set that
is no templates, an empty box and a read-only description. Real film, the bundled model, offscreen."""

from __future__ import annotations

from html import escape

import pytest

from medflip_core.inference.zeroshot import DecisionRule, rule_from_manifest
from medflip_core.labeler.prompts import MANIFEST_PROMPTS, PromptSet, ShippedPrompts, load_prompt_set


def test_the_template_box_shows_the_prompts_the_model_uses(window, qtbot, shared_data):
    w, panel = window, window.zero_shot
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    engine = w.engine
    shipped = engine.shipped_prompts
    assert panel.templates() == list(shipped.prompt_set.templates) == ["findings consistent with {label}."]
    assert panel.templates_summary.text() == "the model's own prompts"
    labels = panel.labels()
    assert engine.prompt_texts(labels, panel.templates()) == engine.prompt_texts(labels)  # what is shown is used
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: len(panel.bars) == len(labels) and not w.busy(), timeout=60000)
    # the bars are the model's own prompts and rule (what an empty box, i.e. no templates at all, scores)
    own = w.session.zero_shot(0, labels, [], panel.label_mode())
    assert own.rule == rule_from_manifest(engine.bundle.manifest) and own.rule != DecisionRule()
    shown = {lb: bar.value() / 1000 for lb, bar in panel.bars.items()}
    assert shown == pytest.approx(dict(zip(own.labels, own.probs[0].tolist(), strict=True)), abs=6e-4)
    assert "your own prompt templates" not in panel.status.text() and own.rule.chosen_on in panel.status.text()
    # one line more: your own, starting from the model's template (not from three it never used)
    panel.templates_edit.appendPlainText("an x-ray with {label}.")
    assert panel.templates() == ["findings consistent with {label}.", "an x-ray with {label}."]
    assert panel.templates_summary.text() == "your own (2), used as typed"
    panel.request()
    qtbot.waitUntil(lambda: len(panel.bars) == len(labels) and not w.busy(), timeout=60000)
    assert "your own prompt templates" in panel.status.text()
    assert w.session.zero_shot(0, labels, panel.templates(), panel.label_mode()).rule == DecisionRule()
    panel.reset_templates.click()
    assert panel.templates() == ["findings consistent with {label}."]
    assert panel.templates_summary.text() == "the model's own prompts"


def test_a_prompt_set_that_is_no_templates_is_described_read_only(window, qtbot):
    from medflip_core.labeler.prompts import model_prompts

    panel = window.zero_shot
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    default = load_prompt_set()
    phrasings = ShippedPrompts("phrasings only", PromptSet((), default.classes, default.negative_template))
    panel.set_model_prompts(model_prompts({**window.engine.bundle.manifest, MANIFEST_PROMPTS: phrasings.as_dict()}))
    panel.templates_toggle.setChecked(True)
    assert panel.templates() == [] and panel.templates_summary.text() == "the model's own prompts"
    note = panel.prompt_note
    assert note.isVisible() and "read-only" in note.text() and "phrasings alone" in note.text()
    assert note.frameShape() != note.frameShape().NoFrame  # framed apart from the editable box
    panel.templates_edit.setPlainText("an x-ray with {label}.")  # your own, from an empty box
    assert panel.templates_summary.text() == "your own (1), used as typed"
    panel.reset_templates.click()
    assert panel.templates() == [] and panel.templates_summary.text() == "the model's own prompts"


def test_an_unchanged_box_keeps_the_bars_and_a_missing_full_stop_stays_the_models(window, qtbot, shared_data):
    """A GUI walk: pressing "Model's prompts" (or retyping the same template) wiped the bars and asked for a
    rescore of 10 s, and a template without its full stop became "your own" with the plain rule."""
    w, panel = window, window.zero_shot
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    labels = panel.labels()
    qtbot.waitUntil(lambda: len(panel.bars) == len(labels) and not w.busy(), timeout=60000)
    panel.request()
    qtbot.waitUntil(lambda: len(panel.bars) == len(labels) and not w.busy(), timeout=60000)
    shown = {lb: bar.value() for lb, bar in panel.bars.items()}
    # each bar's tooltip lists the texts averaged into it (a walk: the phrasings were named, never shown)
    texts = w.engine.prompt_texts(labels)
    assert len(texts["Pneumonia"]) > 1
    for label in labels:
        assert all(escape(t, quote=False) in panel.bars[label].toolTip() for t in texts[label]), label
    panel.templates_edit.setPlainText("findings consistent with {label}.")  # the same text, typed again
    assert {lb: bar.value() for lb, bar in panel.bars.items()} == shown
    panel.templates_edit.setPlainText("findings consistent with {label}")  # the full stop deleted
    assert panel.templates_summary.text() == "the model's own prompts" and not panel.reset_templates.isVisible()
    assert not panel.bars and "templates changed" in panel.status.text()  # another text: scored again to be sure
    panel.request()
    qtbot.waitUntil(lambda: len(panel.bars) == len(labels) and not w.busy(), timeout=60000)
    assert {lb: bar.value() for lb, bar in panel.bars.items()} == shown  # the model's own prompts and rule
    assert "your own prompt templates" not in panel.status.text()
