"""Prompts chosen on validation data of two sources, with the bundled model on real images."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.inference.prompt_choice import candidates, class_embedding_of, compare_prompt_sets
from medflip_core.inference.rule_choice import ValidationSource
from medflip_core.labeler.prompts import load_prompt_set
from medflip_core.metrics import roc_auc_binary

LABELS = ["No Finding", "Pneumonia"]


@pytest.fixture(scope="module")
def engine():
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    return Engine(resolve_model(None), threads=2)


@pytest.fixture(scope="module")
def sources(engine, shared_data):
    from medflip_core.data.label_csv import read_label_csv
    from medflip_core.imaging import load_image

    nih = read_label_csv(shared_data / "cxr-nih-adult" / "labels.csv", labels=LABELS).subset(range(0, 700, 7))
    kermany = shared_data / "cxr-pneumonia-kermany" / "train"
    k_files = sorted((kermany / "NORMAL").iterdir())[:40] + sorted((kermany / "PNEUMONIA").iterdir())[:40]
    return [
        ValidationSource("nih", engine.embed_images([load_image(p) for p in nih.images]).embedding, nih.class_index),
        ValidationSource("kermany", engine.embed_images([load_image(p) for p in k_files]).embedding,
                         np.array([0] * 40 + [1] * 40)),
    ]


def test_candidates_are_parts_of_the_shipped_set():
    base = load_prompt_set()
    options = candidates(base)
    assert options[0].texts(LABELS) == {label: _engine_free_texts(label) for label in LABELS}
    phrasings = next(o for o in options if o.name == "phrasings only").texts(LABELS)
    assert phrasings["Pneumonia"] == list(base.classes["Pneumonia"])
    templates = next(o for o in options if o.name == "templates only").texts(LABELS)
    assert templates["Pneumonia"] == [t.replace("{label}", "pneumonia") for t in base.templates]
    assert len(options) == 3 + len(base.templates)


def _engine_free_texts(label: str, labels: list[str] = LABELS) -> list[str]:
    """The standard prompts (the shipped prompt set as the app uses it), without any bundle's own choice."""
    from medflip_core.labeler.prompts import build_prompts

    return build_prompts(labels).texts_for(label)


def test_the_choice_is_the_best_worst_source_auc(engine, sources):
    chosen, rows = compare_prompt_sets(sources, LABELS, "Pneumonia", engine.embed_texts, candidates(load_prompt_set()))
    assert len(rows) == len(candidates(load_prompt_set()))
    best = max(rows, key=lambda r: (round(r["worst_auc"], 6), round(r["mean_auc"], 6)))
    assert best["prompts"] == chosen.name
    for row in rows:
        assert row["worst_auc"] == min(row["auc[nih]"], row["auc[kermany]"]) and 0.0 <= row["worst_auc"] <= 1.0
    # a row's figure is what the engine's own ensembling gives for the prompts the bundle ships (chosen so)
    shipped = next(r for r in rows if r["prompts"] == engine.bundle.manifest["zero_shot_prompts"]["name"])
    pos = engine.class_embeddings(LABELS)
    img = sources[1].image_emb / np.linalg.norm(sources[1].image_emb, axis=1, keepdims=True)
    cos = img @ pos.T
    assert shipped["auc[kermany]"] == pytest.approx(roc_auc_binary(sources[1].truth == 1, cos[:, 1] - cos[:, 0]),
                                                    abs=1e-9)
    # and differently phrased prompts really give different rankings
    assert len({round(r["auc[nih]"], 6) for r in rows}) > 1


def test_class_embedding_is_a_unit_mean_of_unit_texts(engine):
    emb = class_embedding_of(["pneumonia.", "focal consolidation."], engine.embed_texts)
    assert emb.shape == (engine.embed_texts(["x"]).shape[1],)
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-6)


def test_two_classes_only(engine, sources):
    with pytest.raises(ValueError, match="two exclusive classes"):
        compare_prompt_sets(sources, ["No Finding", "Pneumonia", "Edema"], "Pneumonia", engine.embed_texts,
                            candidates(load_prompt_set()))


def test_the_engine_uses_the_prompts_the_bundle_ships(engine):
    from medflip_core.bundles.bundle import Bundle
    from medflip_core.inference.engine import Engine
    from medflip_core.labeler.prompts import MANIFEST_PROMPTS, ShippedPrompts

    options = {o.name: o for o in candidates(load_prompt_set())}
    for name in ("templates only", "phrasings only"):
        option = options[name]
        shipped = ShippedPrompts(option.name, option.prompt_set, option.mode)
        manifest = {**engine.bundle.manifest, MANIFEST_PROMPTS: shipped.as_dict()}
        assert ShippedPrompts.from_manifest(manifest) == shipped
        chosen = Engine(Bundle(engine.bundle.path, manifest), threads=2, verify=False)
        texts = option.texts(LABELS)
        assert chosen.prompt_texts(LABELS) == texts
        # (the int8 text encoder quantises activations per batch, so texts are compared from one engine's cache)
        np.testing.assert_allclose(chosen.class_embeddings(LABELS)[1],
                                   class_embedding_of(texts["Pneumonia"], chosen.embed_texts), atol=1e-6)
        standard = engine.class_embeddings(LABELS, list(load_prompt_set().templates))  # the full ensemble
        assert not np.allclose(chosen.class_embeddings(LABELS), standard, atol=1e-3)
        # the user's own templates still win, and a label the set has no text for gets the standard prompts
        assert chosen.prompt_texts(LABELS, ["{label} is seen."]) == engine.prompt_texts(LABELS, ["{label} is seen."])
        assert chosen.prompt_texts(["hilar mass"])["hilar mass"]
    phrasings = Engine(Bundle(engine.bundle.path, {**engine.bundle.manifest, MANIFEST_PROMPTS: ShippedPrompts(
        "p", options["phrasings only"].prompt_set).as_dict()}), threads=2, verify=False)
    assert phrasings.prompt_texts(["hilar mass"]) == {"hilar mass": _engine_free_texts("hilar mass", ["hilar mass"])}
