"""Model cards come from the manifest alone: the shipped card is reproducible, and every export writes one."""

from __future__ import annotations

import json

import pytest

from medflip_core.bundles.bundle import load_bundle
from medflip_core.bundles.model_card import clip_model_card
from medflip_core.bundles.model_store import default_model_dir


def test_shipped_card_is_exactly_what_its_manifest_generates():
    bundle = default_model_dir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    card = (bundle / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card == clip_model_card(manifest)  # no hand edits: regenerate with medflip_core.bundles.model_card
    assert "Research use only" in card and "Kermany: 775 images of 427 patients" in card
    assert "NIH: 92 images of 72 patients" in card and "CC BY 4.0" in card
    # continued from the previous default model, and the prompts chosen on validation are named with their table
    assert "initialised from the weights of medflip-default" in card and "Then trained further for" in card
    assert "## Zero-shot prompts" in card and manifest["zero_shot_prompts"]["name"] in card


@pytest.mark.slow
def test_every_export_writes_a_card_from_its_manifest(tiny_bundle, small_folder):
    bundle = load_bundle(tiny_bundle)  # the card is in the manifest's file list, sha256 verified
    card = bundle.model_card()
    assert card == clip_model_card(bundle.manifest)
    assert card.startswith("# tiny-test: MedFLIP image-text model") and "Research use only" in card
    assert str(small_folder) in card and "4 steps of batch 4" in card
    assert "? training images" not in card and ".000," not in card and ".000." not in card  # counts read as counts
    assert f"{bundle.manifest['provenance']['n_train_images']} training images" in card
    assert "Not evaluated on held-out patients yet" in card and "medflip evaluate" in card
