"""medflip bench probe validates on the patients its base model held out of pre-training, when there are any."""

from __future__ import annotations

from medflip_core.bench.probe import base_held_out_patients
from medflip_core.bundles.bundle import Bundle
from medflip_core.data.label_csv import validation_patients
from medflip_core.inference.engine import Engine
from medflip_core.resources import resources_dir


def test_base_held_out_patients_follow_the_base_models_training_config(shared_data):
    csv = shared_data / "cxr-nih-adult" / "labels.csv"
    engine = Engine(resources_dir() / "models" / "medflip-default", threads=1)
    bundle = engine.bundle
    manifest = dict(bundle.manifest)
    provenance = dict(manifest.get("provenance") or {})
    config = dict(provenance.get("training_config") or {})
    provenance["training_config"] = {**config, "extra_sources": [str(csv)], "val_fraction": 0.2, "seed": 3}
    trained_on_nih = Engine(Bundle(bundle.path, {**manifest, "provenance": provenance}), threads=1, verify=False)
    assert base_held_out_patients(trained_on_nih, str(csv)) == validation_patients(csv, 0.2, 3)
    provenance["training_config"] = {**config, "extra_sources": []}
    never_saw_it = Engine(Bundle(bundle.path, {**manifest, "provenance": provenance}), threads=1, verify=False)
    assert base_held_out_patients(never_saw_it, str(csv)) is None


def test_a_recorded_shared_data_path_is_found_wherever_this_checkout_keeps_the_shared_data(shared_data):
    """A model trained in a checkout beside ../shared records '../shared/data/…'; a clone elsewhere (the shared data
    found through MEDFLIP_SHARED_DATA) still recognises the file, so the bench keeps validating on held-out patients."""
    csv = shared_data / "cxr-nih-adult" / "labels.csv"
    engine = Engine(resources_dir() / "models" / "medflip-default", threads=1)
    manifest = dict(engine.bundle.manifest)
    provenance = dict(manifest.get("provenance") or {})
    config = dict(provenance.get("training_config") or {})
    provenance["training_config"] = {**config, "extra_sources": ["../../no-such-place/shared/data/cxr-nih-adult/"
                                                                 "labels.csv"], "val_fraction": 0.15, "seed": 0}
    elsewhere = Engine(Bundle(engine.bundle.path, {**manifest, "provenance": provenance}), threads=1, verify=False)
    assert base_held_out_patients(elsewhere, str(csv)) == validation_patients(csv, 0.15, 0)
