"""Choosing the zero-shot decision rule on validation data of two sources (inference.rule_choice), with the bundled
model on real images: the gap closed, then calibration on the worst source; every source weighing alike; the
split-half check on patients the choice was not made on."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.inference.rule_choice import GAP_TOLERANCE, ValidationSource, choose_decision_rule, split_half_check
from medflip_core.inference.zeroshot import DecisionRule, rule_probabilities


@pytest.fixture(scope="module")
def engine():
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    return Engine(resolve_model(None), threads=2)


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
    labels, sources, patients, pos, neg = two_sources
    check = split_half_check(sources, patients, pos, neg, labels, engine.logit_scale, "Pneumonia")
    assert set(check) == {"nih", "kermany"}
    for v in check.values():
        assert 0.0 <= v["ece"] <= 1.0 and -1.0 <= v["gap"] <= 1.0
    with pytest.raises(ValueError):
        split_half_check(sources, [patients[0][:3], patients[1]], pos, neg, labels, engine.logit_scale, "Pneumonia")
