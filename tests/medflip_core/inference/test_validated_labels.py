"""Which of the model's own labels its validation figures back (a GUI walk: Edema 73 % and Atelectasis 36 % looked
like Pneumonia's bar while the card said one was never measured and the other's CI includes chance)."""

from __future__ import annotations

import json

from medflip_core.inference.validated_labels import validation_notes
from medflip_core.resources import resources_dir

DEFAULTS = ["No Finding", "Pneumonia", "Pleural Effusion", "Cardiomegaly", "Atelectasis", "Edema", "Pneumothorax",
            "Lung Opacity"]


def _manifest() -> dict:
    return json.loads((resources_dir() / "models" / "medflip-default" / "manifest.json").read_text())


def test_the_shipped_models_labels_are_marked_from_its_own_figures():
    manifest = _manifest()
    notes = validation_notes(manifest, [*DEFAULTS, "COVID-19"])
    per = manifest["provenance"]["evaluation"]["NIH_per_finding"]["per_finding"]
    # measured above chance: pneumonia vs normal on both sources, and NIH Infiltration as Lung Opacity
    assert per["Infiltration"]["label"] == "Lung Opacity" and per["Infiltration"]["ci95"][0] > 0.5
    assert not {"No Finding", "Pneumonia", "Lung Opacity"} & set(notes)
    assert per["Atelectasis"]["ci95"][0] <= 0.5 and "not told apart from chance" in notes["Atelectasis"]
    assert f"{per['Atelectasis']['value']:.2f}" in notes["Atelectasis"] and "NIH patients" in notes["Atelectasis"]
    floor = manifest["provenance"]["evaluation"]["NIH_per_finding"]["min_patients"]
    for label in ("Pleural Effusion", "Cardiomegaly", "Edema", "Pneumothorax"):
        # why: too few held-out patients with it (a GUI walk: the NIH sample has 60 effusion films)
        assert notes[label].startswith(f"not validated: fewer than {floor} NIH held-out patients have it")
    assert "COVID-19" not in notes  # outside the label space: zeroshot.outside_label_space marks it
    assert set(validation_notes(manifest, ["effusion"])) == {"effusion"}  # a synonym is the same finding


def test_a_model_without_per_label_figures_says_so_for_every_label():
    """A run trained in the app carries its own zero-shot validation (provenance.validation_metrics) but no
    per-label figure: the words say what is missing, not that it was never evaluated (a review)."""
    manifest = _manifest()
    manifest["provenance"].pop("evaluation")
    notes = validation_notes(manifest, ["No Finding", "Pneumonia", "banana"])
    assert set(notes) == {"No Finding", "Pneumonia"}
    assert all(n.startswith("no per-label validation figure in this model's manifest") for n in notes.values())


def test_a_pair_figure_through_chance_or_a_broken_one_backs_nothing():
    manifest = _manifest()
    evaluation = manifest["provenance"]["evaluation"]
    evaluation.pop("NIH_per_finding")
    for source in ("Kermany", "NIH"):
        evaluation[source]["roc_auc_pneumonia"]["ci95"] = [0.45, 0.7]
    assert set(validation_notes(manifest, ["No Finding", "Pneumonia"])) == {"No Finding", "Pneumonia"}
    evaluation["Kermany"]["roc_auc_pneumonia"]["ci95"] = [float("nan"), float("nan")]
    evaluation["NIH"]["roc_auc_pneumonia"] = {"value": None}
    assert set(validation_notes(manifest, ["Pneumonia"])) == {"Pneumonia"}
