"""Whether a typed label's zero-shot score is about the label or about how abnormal the film looks: the figure
computed from the bundle's chest-film reference against the same figure measured on real films."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.stats import spearmanr

from medflip_core.bundles.model_store import resolve_model
from medflip_core.imaging import load_image
from medflip_core.inference.engine import Engine
from medflip_core.inference.label_specificity import ALIKE_R, abnormality_correlations, alike_notes
from medflip_core.inference.zeroshot import score_labels

LABELS = ["Pneumonia", "Pleural Effusion", "Cardiomegaly", "Atelectasis", "COVID-19", "Fracture"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(resolve_model(None), threads=2)


@pytest.mark.slow
def test_the_reference_figure_matches_the_ranking_on_real_films(engine, shared_data):
    """80 adult NIH films and 80 pediatric Kermany films: each label's findings-mode score against the No Finding
    score, Spearman over the films, vs the figure the bundle's reference gives without any film."""
    root = shared_data / "cxr-nih-adult"
    with open(root / "labels.csv", newline="") as fh:
        files = [root / "images" / r["Image Index"] for r in list(csv.DictReader(fh))[::9][:80]]
    kermany = shared_data / "cxr-pneumonia-kermany" / "train"
    files += sorted((kermany / "NORMAL").iterdir())[:40] + sorted((kermany / "PNEUMONIA").iterdir())[:40]
    emb = np.concatenate([engine.embed_images([load_image(f) for f in files[i:i + 16]]).embedding
                          for i in range(0, len(files), 16)])
    normal = score_labels(engine, emb, ["No Finding"], kind="independent").probs[:, 0]
    computed = abnormality_correlations(engine, LABELS)
    for label in LABELS:
        measured = -spearmanr(score_labels(engine, emb, [label], kind="independent").probs[:, 0], normal)[0]
        assert computed[label] == pytest.approx(measured, abs=0.08), label


def test_notes_only_where_telling_findings_apart_is_the_question(engine):
    r = abnormality_correlations(engine, [*LABELS, "No Finding"])
    assert set(r) == set(LABELS) and all(-1 <= v <= 1 for v in r.values())
    assert r["COVID-19"] >= ALIKE_R  # the shipped model: a label it never learnt scores abnormality
    assert alike_notes(engine, ["No Finding", "Pneumonia"]) == {}  # the normal-vs-pneumonia question: no note
    assert list(alike_notes(engine, ["No Finding", "COVID-19"])) == ["COVID-19"]
    notes = alike_notes(engine, LABELS)
    assert set(notes) == {label for label in LABELS if r[label] >= ALIKE_R}
    assert all(f"correlation {r[label]:.2f}" in why for label, why in notes.items())


def test_a_bundle_without_a_chest_film_reference_says_nothing(tiny_bundle):
    engine = Engine(tiny_bundle, threads=1)
    assert engine.ood_reference is None
    assert abnormality_correlations(engine, LABELS) == {} and alike_notes(engine, ["COVID-19"]) == {}
