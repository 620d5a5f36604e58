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
    # trained in phases from random weights, each listed; the prompts chosen on validation named with their table
    phases = manifest["provenance"]["phases"]
    assert f"trained in {len(phases)} phases" in card and all(f"| {ph['run']} |" in card for ph in phases)
    assert f"In all {sum(ph['steps'] for ph in phases)} steps" in card
    assert "reconstruction only (masked image modelling)" in card  # the first phase
    assert "## Zero-shot prompts" in card and manifest["zero_shot_prompts"]["name"] in card
    # the model it replaced, on the same validation patients, and the few-label features beside raw pixels
    previous = manifest["provenance"]["previous_model"]
    assert f"## Compared with the model it replaces ({previous['name']}" in card
    assert f"| Kermany: pneumonia vs no finding | {previous['roc_auc_pneumonia']['Kermany']['value']:.3f}" in card
    assert "## Few-label image features" in card and "| raw 32x32 pixels |" in card
    assert "| nih_effusion (effusion 44, no finding 150) |" in card
    # the NIH findings were training labels of this model (its training data has NIH's label CSV): said, not hidden
    assert manifest["provenance"]["training_config"]["extra_sources"]
    assert "New questions, named by no training label: bacterial vs viral" in card
    assert "Not new: pneumonia vs normal, and the NIH findings. This model trained on the label CSV(s) of " \
           "cxr-nih-adult" in card
    # the few-label curves (every k, beside the model it replaced, pixels and a random tower) and the ablation
    assert "## Few-label curves (mean ROC AUC at k = 5 / 10 / 20 / 40" in card
    assert "| this model (medflip-default (step 1091)) | the model it replaces (medflip-default (step 3309)) |" in card
    ablation = manifest["provenance"]["ablation"]
    assert "## Ablation (" in card and {"mim0", "no-unlabelled", "attention"} <= set(ablation["arms"])
    assert all(f"- `{arm}`: " in card for arm in ablation["arms"] if arm != "chosen")
    no_csv = json.loads(json.dumps(manifest))
    no_csv["provenance"]["training_config"]["extra_sources"] = []
    assert "the NIH findings were never image labels of these patients" in clip_model_card(no_csv)
    assert "ood_reference.npz" in card
    # what zero-shot per finding and heat-maps can be trusted for (medflip bench findings / pointing)
    assert "## Zero-shot per finding on the NIH ChestX-ray14 adult sample" in card
    assert "## Do heat-maps point at the finding?" in card and "not where the finding is" in card
    # a GUI walk: the TB films that trained every phase were not in the Data section, the paths were the
    # developers' ("../shared/data/…"), and nothing said who the patients are
    assert "- Images without labels (the reconstruction term only" in card and "TBX11K, Liu et al., CVPR 2020" in card
    assert "../shared" not in card and "children aged one to five" in card and "mined from reports by NLP" in card
    on_csv = json.loads(json.dumps(manifest))  # a run on a Labelling tab's labels.csv: no class folders
    on_csv["provenance"]["training_config"].update(images=["/study/labels.csv"], extra_sources=[])
    csv_card = clip_model_card(on_csv)
    assert "Class folders map" not in csv_card and "A label CSV's findings map onto the CheXpert" in csv_card
    assert "the Labelling tab's own validation patients" in csv_card and "each epoch a shuffle" not in csv_card


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


def test_data_is_described_only_when_it_is_a_known_source():
    """A card names a known data set's origin, patients and licence; a user's folder whose name merely contains a
    known source's name is not described as that source (it may hold anything)."""
    from medflip_core.bundles.model_card import _named

    assert _named("../shared/data/cxr-nih-adult/labels.csv").startswith("cxr-nih-adult/labels.csv (NIH ChestX-ray14")
    assert _named("resources/corpora/NLMCXR_reports.tgz").startswith("NLMCXR_reports.tgz (Indiana University")
    assert "Guangzhou" in _named("/data/cxr-pneumonia-kermany/train")
    for mine in ("/home/me/my-cxr-pneumonia-kermany-copy/train", "/data/NLMCXR_reports_2027.tgz"):
        assert _named(mine) == mine
