from __future__ import annotations

import numpy as np
import pytest

from medflip_core.errors import MedflipError
from medflip_core.inference.zeroshot import class_embeddings, pair_scores, patch_similarity_map, zero_shot_scores
from medflip_core.labeler.prompts import build_prompts, load_prompt_set


def test_default_prompt_set_covers_the_label_space():
    from medflip_core.labeler.labels import CHEXPERT_LABELS

    prompts = load_prompt_set()
    assert set(prompts.classes) == set(CHEXPERT_LABELS)
    assert all("{label}" in t for t in prompts.templates)


def test_arbitrary_label_gets_generic_templates_and_known_label_its_phrasings():
    plan = build_prompts(["Pneumoperitoneum", "pleural effusion"])
    generic = plan.texts_for("Pneumoperitoneum")
    assert generic == [t.replace("{label}", "pneumoperitoneum") for t in load_prompt_set().templates]
    effusion = plan.texts_for("pleural effusion")
    assert "blunting of the costophrenic angle from an effusion." in effusion


def test_plan_deduplicates_texts():
    plan = build_prompts(["Edema", "Pneumonia"], templates=["{label}.", "{label}."], mode="template")
    assert len(plan.texts) == 2 and plan.positives == [[0], [1]]


def test_pairs_mode_and_bad_input():
    plan = build_prompts(["Pneumonia"], mode="pairs")
    assert plan.texts == ["pneumonia.", "no pneumonia."] and plan.negatives == [[1]]
    with pytest.raises(MedflipError):
        build_prompts([" ", ""])
    with pytest.raises(MedflipError):
        build_prompts(["Edema", "edema"])


def test_zero_shot_probabilities_sum_to_one_and_pick_the_closest_class():
    plan = build_prompts(["A", "B"], templates=["{label}"], mode="template")
    text_emb = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    cls = class_embeddings(plan, text_emb)
    probs = zero_shot_scores(np.array([[0.9, 0.1, 0.0], [0.0, 0.0, 0.0]]), cls, logit_scale=10.0)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0, 0] > 0.99
    assert np.allclose(probs[1], [0.5, 0.5])  # zero vector: no preference, no NaN


def test_pair_scores_are_independent_per_class():
    img = np.array([[1.0, 0.0]])
    pos = np.array([[1.0, 0.0], [0.0, 1.0]])
    neg = np.array([[0.0, 1.0], [1.0, 0.0]])
    p = pair_scores(img, pos, neg, logit_scale=5.0)
    assert p.shape == (1, 2)
    assert p[0, 0] == pytest.approx(1 / (1 + np.exp(-5.0)))
    assert p[0, 1] == pytest.approx(1 / (1 + np.exp(5.0)))


def test_similarity_map_places_masked_patches_as_nan():
    tokens = np.eye(4, 3)[:3]
    m = patch_similarity_map(tokens, np.array([1.0, 0.0, 0.0]), (2, 2), keep=np.array([0, 2, 3]))
    assert m.shape == (2, 2) and np.isnan(m[0, 1])
    assert m[0, 0] == pytest.approx(1.0) and m[1, 0] == pytest.approx(0.0)
