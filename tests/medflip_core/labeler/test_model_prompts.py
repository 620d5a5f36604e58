"""A GUI walk: the Zero-shot tab's template box listed three generic templates while the bundled model scored with
its own prompt set. labeler.prompts.model_prompts says what a model's own prompts are and whether typing templates
gives the same texts; zeroshot.user_templates takes those templates, not the generic ones, for the model's own."""

from __future__ import annotations

import pytest

from medflip_core.inference.zeroshot import DecisionRule, rule_from_manifest, score_with_templates, user_templates
from medflip_core.labeler.prompts import MANIFEST_PROMPTS, ShippedPrompts, load_prompt_set, model_prompts

LABELS = ["No Finding", "Pneumonia", "Pleural Effusion", "COVID-19"]


@pytest.fixture(scope="module")
def engine():
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    return Engine(resolve_model(None), threads=2)


def test_the_bundled_models_prompts_are_its_own_templates_and_typing_them_gives_the_texts_it_uses(engine):
    manifest = engine.bundle.manifest
    own = model_prompts(manifest)
    shipped = ShippedPrompts.from_manifest(manifest)
    assert own.as_templates and own.templates == shipped.prompt_set.templates
    assert own.templates != load_prompt_set().templates  # the three generic ones are not what the model uses
    # the texts scored with no templates (the model's own) are exactly those of its templates typed in the box
    assert engine.prompt_texts(LABELS, list(own.templates)) == engine.prompt_texts(LABELS)
    assert engine.prompt_texts(LABELS, list(load_prompt_set().templates)) != engine.prompt_texts(LABELS)
    assert user_templates(list(own.templates), manifest) is None and user_templates([], manifest) is None
    generic = list(load_prompt_set().templates)
    assert user_templates(generic, manifest) == generic
    assert user_templates([*own.templates, "an x-ray with {label}."], manifest) is not None


def test_the_models_templates_get_its_rule_and_the_generic_ones_are_the_users_own(engine, shared_data):
    from medflip_core.imaging import load_image

    embedding = engine.embed_images([load_image(shared_data / "dicom" / "RG1_UNCR.dcm")]).embedding[0]
    own = score_with_templates(engine, embedding, LABELS[:3], list(model_prompts(engine.bundle.manifest).templates))
    assert own.rule == rule_from_manifest(engine.bundle.manifest) and not own.own_templates
    typed = score_with_templates(engine, embedding, LABELS[:3], list(load_prompt_set().templates))
    assert typed.rule == DecisionRule() and typed.own_templates


def test_a_set_that_is_no_templates_is_described_instead(engine):
    default = load_prompt_set()
    phrasings = {**engine.bundle.manifest, MANIFEST_PROMPTS: ShippedPrompts(
        "phrasings only", type(default)((), default.classes, default.negative_template)).as_dict()}
    own = model_prompts(phrasings)
    assert not own.as_templates and own.templates == ()
    assert "phrasings alone" in own.description and "default prompt set" in own.description
    assert user_templates([], phrasings) is None and user_templates(["{label}."], phrasings) == ["{label}."]
    alone = {**engine.bundle.manifest, MANIFEST_PROMPTS: ShippedPrompts(
        "templates only", default, "template").as_dict()}
    assert not model_prompts(alone).as_templates  # typed templates would add the phrasings it has not
    assert user_templates(list(default.templates), alone) is not None
    without = {k: v for k, v in engine.bundle.manifest.items() if k != MANIFEST_PROMPTS}
    assert model_prompts(without).templates == default.templates and model_prompts(without).as_templates


def test_the_models_template_retyped_without_its_full_stop_or_in_other_case_is_still_its_own(engine):
    """A GUI walk: deleting the template's final full stop made it "your own", with the plain rule, and moved
    Pneumonia from 41.5 % to 66.9 %. Case, spacing and a final full stop do not make other prompts."""
    from medflip_core.labeler.prompts import same_templates

    manifest = engine.bundle.manifest
    assert user_templates(["findings consistent with {label}"], manifest) is None
    assert user_templates(["  Findings  consistent with {label}. "], manifest) is None
    assert user_templates(["findings consistent with {label}!"], manifest) == ["findings consistent with {label}!"]
    assert user_templates(["findings consistent with {label}", "an x-ray with {label}."], manifest) is not None
    assert same_templates(["a {label}."], ["A {label}"]) and not same_templates(["a {label}."], ["the {label}."])
    assert not same_templates(["a {label}."], ["a {label}.", "b {label}."])
