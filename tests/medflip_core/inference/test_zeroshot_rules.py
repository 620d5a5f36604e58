"""Zero-shot decision rules: exclusive vs independent findings, bias and temperature, the rule a bundle's manifest
gives, with the bundled model on real images (choosing a rule on validation data: test_rule_choice.py)."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.inference.zeroshot import (
    EXCLUSIVE,
    INDEPENDENT,
    MANIFEST_KEY,
    DecisionRule,
    label_kind,
    rule_from_manifest,
    rule_probabilities,
    score_labels,
)


def test_label_kind_findings_are_independent():
    assert label_kind(["Pleural Effusion", "Cardiomegaly", "No Finding"]) == INDEPENDENT
    assert label_kind(["No Finding", "Pneumonia"]) == EXCLUSIVE
    assert label_kind(["NORMAL", "PNEUMONIA"]) == EXCLUSIVE
    assert label_kind(["cat", "dog"]) == EXCLUSIVE


def test_rule_round_trip_and_old_bundles_keep_softmax():
    rule = DecisionRule("pairs", {"pneumonia": -1.5}, 2.0, "validation")
    assert DecisionRule.from_dict(rule.as_dict()) == rule
    assert rule_from_manifest({}) == DecisionRule()
    assert rule_from_manifest({MANIFEST_KEY: rule.as_dict()}) == rule
    with pytest.raises(ValueError):
        DecisionRule("vote")


def test_bias_moves_the_decision_and_temperature_only_the_confidence():
    img = np.array([[1.0, 0.2, 0.0]])
    pos = np.array([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0]])
    base = rule_probabilities(img, pos, None, ["No Finding", "Pneumonia"], DecisionRule(), 30.0)
    biased = rule_probabilities(img, pos, None, ["No Finding", "Pneumonia"], DecisionRule(bias={"pneumonia": -3.0}),
                                30.0)
    assert base.argmax() != biased.argmax()
    hot = rule_probabilities(img, pos, None, ["No Finding", "Pneumonia"], DecisionRule(temperature=5.0), 30.0)
    assert hot.argmax() == base.argmax() and hot.max() < base.max()


@pytest.fixture(scope="module")
def engine():
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    return Engine(resolve_model(None), threads=2)


def test_findings_get_independent_probabilities_from_the_engine(engine, shared_data):
    from medflip_core.imaging import load_image

    img = engine.embed_images([load_image(sorted((shared_data / "cxr-nih-adult" / "images").iterdir())[0])])
    findings = score_labels(engine, img.embedding, ["Pleural Effusion", "Cardiomegaly", "Pneumonia"])
    assert findings.kind == INDEPENDENT and "do not sum" in findings.explanation()
    assert "fitted on validation patients of Kermany, NIH" in findings.explanation()  # the shipped rule's data
    assert not np.isclose(findings.probs.sum(), 1.0, atol=1e-3)
    assert ((findings.probs > 0) & (findings.probs < 1)).all()
    exclusive = score_labels(engine, img.embedding, ["No Finding", "Pneumonia"])
    assert exclusive.kind == EXCLUSIVE
    np.testing.assert_allclose(exclusive.probs.sum(axis=1), 1.0, atol=1e-5)


def test_engine_reads_the_rule_from_the_manifest(engine, shared_data):
    from medflip_core.bundles.bundle import Bundle
    from medflip_core.imaging import load_image
    from medflip_core.inference.engine import Engine

    img = engine.embed_images([load_image(p) for p in sorted((shared_data / "cxr-nih-adult" / "images").iterdir())[:6]])
    labels = ["No Finding", "Pneumonia"]
    plain = engine.classify_embeddings(img.embedding, labels)
    rule = DecisionRule("softmax", {"pneumonia": -50.0}, 1.0, "test")
    biased = Engine(Bundle(engine.bundle.path, {**engine.bundle.manifest, MANIFEST_KEY: rule.as_dict()}), threads=2,
                    verify=False)
    shifted = biased.classify_embeddings(img.embedding, labels)
    assert (shifted[:, 1] < plain[:, 1]).all() and (shifted.argmax(axis=1) == 0).all()
    scores = biased.zero_shot(img.embedding, ["Pleural Effusion", "Cardiomegaly"])
    assert scores.kind == INDEPENDENT and scores.rule == rule and scores.probs.shape == (6, 2)
