"""Zero-shot label modes (issue 23 item 4): findings each present vs absent, or one class per image; chosen from
the labels unless the user chooses; one label never 100 % by construction; No Finding beside findings says
when the two cannot both hold. Real bundled model, real films."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.errors import MedflipError
from medflip_core.inference.zeroshot import (
    AUTOMATIC,
    EXCLUSIVE,
    INDEPENDENT,
    MODE_NAMES,
    choose_label_mode,
    label_kind,
    outside_label_space,
    score_with_templates,
    uncalibrated_warning,
)

FOUR = ["Pneumothorax", "Pneumonia", "Pleural Effusion", "Cardiomegaly"]


def test_automatic_mode_follows_what_the_labels_are():
    single = choose_label_mode(["pneumothorax"])
    assert (single.kind, single.automatic) == (INDEPENDENT, True) and "no pneumothorax" in single.reason
    findings = choose_label_mode(["No Finding", *FOUR])
    assert findings.kind == INDEPENDENT and findings.reason.startswith("4 of the 5 labels are findings")
    assert "“No Finding” is scored the same way, on its own" in findings.reason  # not left uncounted (GUI walk)
    assert choose_label_mode(FOUR).reason.startswith("all 4 labels are findings")
    typed = choose_label_mode(["Pleural Effusion", "Cardiomegaly", "Nodule"])  # Nodule: not a CheXpert name
    assert typed.kind == INDEPENDENT and "“Nodule” is scored the same way" in typed.reason
    assert choose_label_mode(["No Finding", "Pneumonia"]).kind == EXCLUSIVE
    assert choose_label_mode(["NORMAL", "PNEUMONIA"]).kind == EXCLUSIVE
    free = choose_label_mode(["PA view", "lateral view"])
    assert free.kind == EXCLUSIVE and "“PA view”" in free.reason and free.name == MODE_NAMES[EXCLUSIVE]
    assert label_kind(["pneumothorax"]) == INDEPENDENT  # the old entry point agrees


def test_an_explicit_choice_is_kept_whatever_the_labels():
    chosen = choose_label_mode(["No Finding", "Pneumonia"], INDEPENDENT)
    assert (chosen.kind, chosen.automatic) == (INDEPENDENT, False)
    chosen = choose_label_mode(FOUR, EXCLUSIVE)
    assert (chosen.kind, chosen.automatic) == (EXCLUSIVE, False)
    assert choose_label_mode(FOUR, AUTOMATIC).automatic and choose_label_mode(FOUR, None).automatic
    with pytest.raises(ValueError):
        choose_label_mode(FOUR, "softmax")


def test_one_class_per_image_with_one_label_is_refused_with_a_sentence():
    with pytest.raises(MedflipError) as exc:
        choose_label_mode(["pneumothorax"], EXCLUSIVE)
    text = str(exc.value)
    assert "at least two labels" in text and "100 % by construction" in text and "no pneumothorax" in text


@pytest.fixture(scope="module")
def engine():
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    return Engine(resolve_model(None), threads=2)


@pytest.fixture(scope="module")
def chest(engine, shared_data):
    from medflip_core.imaging import load_image

    return engine.embed_images([load_image(shared_data / "dicom" / "RG1_UNCR.dcm")]).embedding


def test_one_label_is_scored_against_its_negative_and_keeps_its_meaning_among_others(engine, chest):
    """"pneumothorax" alone was 100.0 % (a softmax over one label); now it is P(present) against "no
    pneumothorax", the same number whatever other findings are typed beside it."""
    alone = score_with_templates(engine, chest, ["pneumothorax"])
    assert alone.kind == INDEPENDENT and alone.automatic
    assert 0.0 < alone.probs[0, 0] < 0.99
    among = score_with_templates(engine, chest, FOUR)
    assert among.kind == INDEPENDENT
    assert among.probs[0, 0] == pytest.approx(alone.probs[0, 0], abs=1e-6)
    with pytest.raises(MedflipError, match="100 % by construction"):
        score_with_templates(engine, chest, ["pneumothorax"], kind=EXCLUSIVE)


def test_the_chosen_mode_is_what_is_computed_and_named(engine, chest):
    exclusive = score_with_templates(engine, chest, FOUR, kind=EXCLUSIVE)
    assert (exclusive.kind, exclusive.automatic) == (EXCLUSIVE, False)
    np.testing.assert_allclose(exclusive.probs.sum(axis=1), 1.0, atol=1e-5)
    assert exclusive.mode_name == "one class per image" and "chosen by the user" in exclusive.mode_text()
    assert exclusive.explanation().startswith("one class per image (your choice)")
    pair = score_with_templates(engine, chest, ["No Finding", "Pneumonia"], kind=INDEPENDENT)
    assert pair.kind == INDEPENDENT and not np.isclose(pair.probs.sum(), 1.0, atol=1e-3)
    auto = score_with_templates(engine, chest, FOUR)
    assert auto.mode_text().startswith("findings, each present vs absent (automatic: all 4 labels are findings")
    # the user's own templates: the same modes, with the plain rule
    custom = score_with_templates(engine, chest, ["pneumothorax"], ["an x-ray with {label}."])
    assert custom.kind == INDEPENDENT and 0.0 < custom.probs[0, 0] < 0.99
    with pytest.raises(MedflipError):
        score_with_templates(engine, chest, ["pneumothorax"], ["an x-ray with {label}."], kind=EXCLUSIVE)


def test_no_finding_beside_findings_says_when_both_cannot_hold(engine, shared_data):
    """No Finding means none of the findings: scored independently, P(No Finding) + P(finding) > 1 is a
    contradiction, and the result names it (on each image where it happens, and only there)."""
    from medflip_core.imaging import load_image

    files = sorted((shared_data / "cxr-nih-adult" / "images").iterdir())[:30]
    files.append(shared_data / "dicom" / "RG1_UNCR.dcm")
    emb = engine.embed_images([load_image(p) for p in files]).embedding
    labels = list(engine.bundle.default_labels)
    assert labels[0] == "No Finding" and len(labels) > 2
    scores = score_with_templates(engine, emb, labels)
    assert scores.kind == INDEPENDENT
    clashing = 0
    for row in range(len(files)):
        p = scores.probs[row]
        expected = bool((p[0] + p[1:] > 1.0).any())
        notes = scores.contradictions(row)
        assert bool(notes) == expected
        if expected:
            clashing += 1
            worst = labels[1 + int(np.argmax(p[1:]))]
            assert notes[0].startswith(f"No Finding {p[0] * 100:.1f} % contradicts {worst}")
    assert clashing >= 1  # the issue's own film: No Finding 52.8 % and Pneumonia 61.3 %
    assert scores.contradictions(len(files) - 1)
    exclusive = score_with_templates(engine, emb, labels, kind=EXCLUSIVE)  # sums to 1: nothing to contradict
    assert all(not exclusive.contradictions(r) for r in range(len(files)))


def test_session_passes_the_mode_through(engine, shared_data):
    from medflip_core.session import Session, load_paths

    session = Session()
    session.set_engine(engine)
    session.add_images(load_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")]).images)
    assert session.zero_shot(0, ["pneumothorax"], []).kind == INDEPENDENT
    assert session.zero_shot(0, FOUR, [], "exclusive").kind == EXCLUSIVE
    with pytest.raises(MedflipError, match="at least two labels"):
        session.zero_shot(0, ["pneumothorax"], [], "exclusive")


def test_labels_outside_the_label_space_are_named_with_their_synonyms_inside():
    typed = ["pneumonia", "Effusion", "No Finding", "Nodule", "COVID-19", "banana", "Infiltration", ""]
    assert outside_label_space(typed) == ["Nodule", "COVID-19", "banana", "Infiltration"]
    assert uncalibrated_warning(["Pneumonia", "Pleural Effusion"]) == ""
    one = uncalibrated_warning(["Pneumonia", "COVID-19"])
    assert one.startswith("“COVID-19” is not one of the model's labels") and "its score" in one
    many = uncalibrated_warning(["a", "b", "c", "d", "e"])
    assert many.startswith("“a”, “b”, “c”, “d” … are not among") and "their scores" in many


def test_one_class_per_image_without_no_finding_says_a_normal_film_gets_a_finding(engine, shared_data):
    """A GUI walk: with "Pneumonia, COVID-19" a batch gave all 10 NIH No Finding films one of the two, and nothing
    said why. The mode's words (tab, Batch status, CSV) now say it; with No Finding, or the user's own classes
    that cover every film, they do not."""
    import csv

    from medflip_core.imaging import load_image

    nih = shared_data / "cxr-nih-adult"
    with open(nih / "labels.csv", newline="") as fh:
        name = next(r["Image Index"] for r in csv.DictReader(fh) if r["Finding Labels"] == "No Finding")
    normal = nih / "images" / name
    embedding = engine.embed_images([load_image(normal)]).embedding
    odd = score_with_templates(engine, embedding, ["Pneumonia", "COVID-19"])
    assert odd.kind == EXCLUSIVE and odd.probs[0].max() >= 0.5  # one of them, whatever the film shows
    for text in (odd.mode_text(), odd.explanation()):
        assert "no label stands for a normal film" in text and "add “No Finding”" in text
    chosen = score_with_templates(engine, embedding, ["Pneumonia", "Pleural Effusion"], kind=EXCLUSIVE)
    assert "no label stands for a normal film" in chosen.explanation()
    for labels in (["No Finding", "Pneumonia"], ["PA view", "lateral view"]):
        fine = score_with_templates(engine, embedding, labels)
        assert "normal film" not in fine.mode_text() and "normal film" not in fine.explanation()
    assert "normal film" not in score_with_templates(engine, embedding, FOUR).explanation()  # each vs absent


def test_one_label_in_one_class_mode_names_its_negative_without_saying_no_no():
    """A GUI walk: "No Finding" alone in one-class mode was told to score it against 'no no finding'."""
    with pytest.raises(MedflipError) as said:
        choose_label_mode(["No Finding"], EXCLUSIVE)
    assert "no no" not in str(said.value) and "against its negative prompt" in str(said.value)
    with pytest.raises(MedflipError, match="against “no pneumothorax”"):
        choose_label_mode(["Pneumothorax"], EXCLUSIVE)
