"""Zero-shot decision rules: exclusive vs independent findings, bias and temperature, a rule chosen on
validation data of two sources, with the bundled model on real images."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.inference.zeroshot import (
    EXCLUSIVE,
    INDEPENDENT,
    MANIFEST_KEY,
    DecisionRule,
    ValidationSource,
    choose_decision_rule,
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


@pytest.fixture(scope="module")
def two_sources(engine, shared_data):
    from medflip_core.data.label_csv import read_label_csv
    from medflip_core.imaging import load_image

    labels = ["No Finding", "Pneumonia"]
    nih = read_label_csv(shared_data / "cxr-nih-adult" / "labels.csv", labels=labels).subset(range(0, 700, 7))
    kermany = shared_data / "cxr-pneumonia-kermany" / "train"
    k_files = sorted((kermany / "NORMAL").iterdir())[:40] + sorted((kermany / "PNEUMONIA").iterdir())[:40]
    sources = [
        ValidationSource("nih", engine.embed_images([load_image(p) for p in nih.images]).embedding, nih.class_index),
        ValidationSource("kermany", engine.embed_images([load_image(p) for p in k_files]).embedding,
                         np.array([0] * 40 + [1] * 40)),
    ]
    patients = [[p.name[:8] for p in nih.images], [p.name.split("_")[0] for p in k_files]]
    return labels, sources, patients, engine.class_embeddings(labels), engine.embed_texts(["no finding.",
                                                                                          "no pneumonia."])


def _nll(source, pos, neg, labels, rule, scale) -> float:
    p = rule_probabilities(source.image_emb, pos, neg, labels, rule, scale).astype(np.float64)
    return float(-np.log(p[np.arange(len(source.truth)), source.truth]).mean())


def test_rule_chosen_on_two_sources_closes_the_gap_then_calibrates_the_worst_source(engine, two_sources):
    from medflip_core.inference.zeroshot import GAP_TOLERANCE

    labels, sources, _, pos, neg = two_sources
    rule, table = choose_decision_rule(sources, pos, neg, labels, engine.logit_scale, "Pneumonia")
    assert rule.mode in ("softmax", "pairs") and rule.temperature > 0 and "nih" in rule.chosen_on
    chosen = next(r for r in table if r["mode"] == rule.mode and r["bias"] == rule.bias["pneumonia"])
    plain = next(r for r in table if r["mode"] == "softmax" and r["bias"] == 0.0)
    assert chosen["worst_gap"] <= max(plain["worst_gap"], GAP_TOLERANCE)
    admissible = [r for r in table if r["worst_gap"] <= GAP_TOLERANCE]
    if admissible:  # the chosen rule is the best-calibrated admissible one, on its worst source
        assert chosen["worst_gap"] <= GAP_TOLERANCE
        assert chosen["worst_nll"] == min(r["worst_nll"] for r in admissible)
    worst = max(_nll(s, pos, neg, labels, rule, engine.logit_scale) for s in sources)
    assert worst == pytest.approx(chosen["worst_nll"], rel=1e-4)
    for t in (rule.temperature / 2, rule.temperature * 2):  # its temperature beats others for its bias
        other = DecisionRule(rule.mode, rule.bias, t)
        assert max(_nll(s, pos, neg, labels, other, engine.logit_scale) for s in sources) > worst


def test_a_larger_source_does_not_sway_the_rule(engine, two_sources):
    """Every source weighs alike: repeating one source's images five times leaves the choice as it is (pooling
    the images, as the first rule did, would let the larger source decide)."""
    labels, sources, _, pos, neg = two_sources
    nih, kermany = sources
    bigger = ValidationSource("kermany", np.repeat(kermany.image_emb, 5, axis=0), np.repeat(kermany.truth, 5))
    a, _ = choose_decision_rule(sources, pos, neg, labels, engine.logit_scale, "Pneumonia")
    b, _ = choose_decision_rule([nih, bigger], pos, neg, labels, engine.logit_scale, "Pneumonia")
    assert (a.mode, a.bias, a.temperature) == (b.mode, b.bias, b.temperature)


def test_split_half_check_measures_the_choice_on_patients_it_was_not_made_on(engine, two_sources):
    from medflip_core.inference.zeroshot import split_half_check

    labels, sources, patients, pos, neg = two_sources
    check = split_half_check(sources, patients, pos, neg, labels, engine.logit_scale, "Pneumonia")
    assert set(check) == {"nih", "kermany"}
    for v in check.values():
        assert 0.0 <= v["ece"] <= 1.0 and -1.0 <= v["gap"] <= 1.0
    with pytest.raises(ValueError):
        split_half_check(sources, [patients[0][:3], patients[1]], pos, neg, labels, engine.logit_scale, "Pneumonia")


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
