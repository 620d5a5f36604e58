"""The Batch table's and CSV's top label: one of the model's own labels whenever one was asked."""

from __future__ import annotations

import pytest

from medflip_core.bundles.model_store import resolve_model
from medflip_core.inference.batch import classify_files
from medflip_core.inference.engine import Engine

LABELS = ["Pneumonia", "Pleural Effusion", "Cardiomegaly", "COVID-19", "Nodule"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(resolve_model(None), threads=2)


def test_a_label_outside_the_models_labels_is_never_the_top_label(engine, shared_data):
    """A GUI walk: "COVID-19" was the top label of 4 of 5 normal children's films (every score under 0.25) in a
    batch of the labels above: the column took the largest number, a label the app says is no probability."""
    films = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:8]
    rows = classify_files(engine, films, LABELS)
    assert len(rows) == 8 and all("error" not in r for r in rows)
    # the case the walk met is in this sample: an outside label holds the largest number
    assert any(max(r["scores"], key=r["scores"].get) in {"COVID-19", "Nodule"} for r in rows)
    for r in rows:
        own = {k: v for k, v in r["scores"].items() if k not in {"COVID-19", "Nodule"}}
        assert r["top"] == max(own, key=own.get)
    only_outside = classify_files(engine, films[:1], ["COVID-19", "Nodule"])[0]
    assert only_outside["top"] == max(only_outside["scores"], key=only_outside["scores"].get)  # nothing else asked


def test_a_film_out_of_the_models_distribution_has_no_top_label(engine, shared_data, tmp_path):
    """A GUI walk: a tibia in a folder of chest films came out of Batch (and its CSV) with top label "No Finding",
    so a filter on that column counted a leg as a normal chest. Its scores are kept, the top label is empty."""
    leg, chest = shared_data / "dicom" / "RG3_J2KI.dcm", shared_data / "dicom" / "RG1_J2KI.dcm"
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in classify_files(engine, [leg, chest], ["No Finding", "Pneumonia"])}
    assert rows[leg.name]["warnings"] and rows[leg.name]["top"] == "" and set(rows[leg.name]["scores"]) == {
        "No Finding", "Pneumonia"}
    assert not rows[chest.name]["warnings"] and rows[chest.name]["top"] in {"No Finding", "Pneumonia"}
