"""Issue 30 items 3-5 on the Qt-free job, with the real bundled model and real films: patient ids (DICOM header as
a pseudonym, file-name patterns), duplicates and out-of-distribution films flagged and never offered, the head
starting as zero-shot and learning from the answers, the order (random share, validation patients never train),
and the classifier bundle it ends in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.inference.engine import Engine
from medflip_core.labelling.films import dicom_patient
from medflip_core.labelling.job import LabellingJob, make_classifier, refit
from medflip_core.labelling.learner import head_from_prior
from medflip_core.labelling.order import RANDOM_SHARE, is_random_pick

DICOMS = ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG3_J2KI.dcm", "highdicom_dx_animal_lateral.dcm",
          "rsna_cr_chest_jpeg_baseline.dcm"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    from medflip_core.bundles.model_store import resolve_model

    return Engine(resolve_model(None), threads=1)


def truth(name: str) -> str:
    return "Pneumonia" if name.startswith("person") else "No Finding"


@pytest.fixture
def kermany_flat(shared_data, tmp_path) -> Path:
    """60 real Kermany films (30 per class), flat, as a study folder."""
    flat = tmp_path / "study"
    flat.mkdir()
    for cls in ("NORMAL", "PNEUMONIA"):
        for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / cls).iterdir())[:30]:
            (flat / f.name).symlink_to(f)
    return flat


def test_dicom_patients_are_pseudonyms_and_odd_films_are_flagged(shared_data, tmp_path, engine):
    folder = tmp_path / "dicoms"
    folder.mkdir()
    for name in DICOMS:
        shutil.copy(shared_data / "dicom" / name, folder / name)
    job = LabellingJob(folder, ["No Finding", "Pneumonia"], where="beside", engine=engine)
    job.prepare()
    films = {f.name: f for f in job.films}
    for name in DICOMS:
        real_id = dicom_patient(folder / name)
        assert real_id and films[name].patient.startswith("pt-") and real_id not in films[name].patient
    assert films["RG1_UNCR.dcm"].patient == films["RG1_J2KR.dcm"].patient  # same header: same pseudonym
    # the same film stored twice (uncompressed, lossless JPEG 2000): the later one in the folder's order is flagged
    assert any("duplicate of RG1_J2KR.dcm (the same picture" in f for f in films["RG1_UNCR.dcm"].flags)
    assert any("not a chest" in f for f in films["RG3_J2KI.dcm"].flags)
    assert any("lateral view" in f or "not a human" in f for f in films["highdicom_dx_animal_lateral.dcm"].flags)
    assert films["RG1_J2KR.dcm"].offered and films["rsna_cr_chest_jpeg_baseline.dcm"].offered
    shown = []
    film = job.next()
    while film is not None:
        shown.append(film.name)
        film = job.answer(["No Finding"])
    assert sorted(shown) == ["RG1_J2KR.dcm", "rsna_cr_chest_jpeg_baseline.dcm"]
    csv = (folder / "labels.csv").read_text()
    for name in DICOMS:
        assert dicom_patient(folder / name) not in csv


def test_a_leg_film_saved_as_png_is_offered_with_a_caution_and_the_layout_is_cached(shared_data, tmp_path, engine):
    """Without a DICOM header nothing but the content check can tell a leg film from a chest film: the job offers
    it with the check's words; a second job on the same folder reads the layouts from the cache, same verdicts."""
    from PIL import Image

    from medflip_core.inference.image_ood import FAR

    folder = tmp_path / "pngs"
    folder.mkdir()
    leg = load_image(shared_data / "dicom" / "RG3_J2KI.dcm").pixels
    Image.fromarray((np.clip(leg, 0, 1) * 255).astype(np.uint8)).save(folder / "leg.png")
    for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:3]:
        shutil.copy(f, folder / f.name)
    cache = tmp_path / "cache"
    verdicts = []
    for _ in range(2):
        job = LabellingJob(folder, ["No Finding", "Pneumonia"], engine=engine, cache_dir=cache)
        job.prepare()
        films = {f.name: f for f in job.films}
        assert films["leg.png"].offered and films["leg.png"].cautions[0].startswith(FAR)
        verdicts.append({name: f.cautions for name, f in films.items()})
        assert not any(f.cautions for name, f in films.items() if name != "leg.png")
    assert verdicts[0] == verdicts[1] and any(p.name.endswith("-layout") for p in cache.iterdir())


def test_with_no_labels_the_head_is_zero_shot(kermany_flat, engine):
    job = LabellingJob(kermany_flat, ["No Finding", "Pneumonia"], engine=engine)
    job.prepare()
    zero_shot = engine.zero_shot(job.embeddings[:8], ["No Finding", "Pneumonia"], kind="exclusive").probs
    np.testing.assert_allclose(head_from_prior(job.prior).probabilities(job.embeddings[:8]), zero_shot, atol=1e-5)
    assert job.suggestion(0) and job.head_kind() == "zero-shot"
    assert [f.patient for f in job.films if f.name.startswith("person1000_")] == ["person1000"] * len(
        [f for f in job.films if f.name.startswith("person1000_")])


def test_the_loop_learns_splits_by_patient_and_ends_in_a_classifier(kermany_flat, engine, tmp_path, shared_data):
    job = LabellingJob(kermany_flat, ["No Finding", "Pneumonia"], engine=engine)
    job.prepare()
    film, chosen = job.next(), []
    while film is not None:
        chosen.append(job.current_chosen_by)
        film = job.answer([truth(film.name)])
        if job.refit_due():
            job.set_head(*refit(job.snapshot()))
    assert job.answered == 60 and job.counts() == {"No Finding": 30, "Pneumonia": 30}
    # the films the content check finds far from the training chest films are offered, with its words: the same
    # verdict as the check gives each film embedded afresh (the job reads the layout from its cache)
    from medflip_core.inference.image_ood import embedding_reasons, layout_features

    far = []
    for f in job.films:
        embedded = engine.embed_images([load_image(f.path)])
        if embedding_reasons(embedded.embedding[0], engine.ood_reference,
                             layout_features(embedded.patch_tokens, embedded.grid)[0]):
            far.append(f.name)
    assert [f.name for f in job.films if f.cautions] == far
    # and the counts say so: "0 flagged" beside a film marked as unlike the chest films read as a mistake
    assert job.summary().endswith("0 flagged and not offered" + (
        f", {len(far)} offered with a caution (unlike most chest films the model knows)" if far else ""))
    # a fixed share of the picks are random ones (while validation films are left to draw from)
    assert chosen[: 12].count("random (validation)") == sum(is_random_pick(i, RANDOM_SHARE) for i in range(12))
    train, val, _ = job.sides()
    train_patients = {a.patient for _, a in train}
    assert train_patients.isdisjoint({a.patient for _, a in val}) and val
    assert job.curve and job.head.trained_on == len(train) and job.head_kind().startswith("learned")
    point = job.curve[-1]
    assert 0.0 <= point.ci95[0] <= point.auc <= point.ci95[1] <= 1.0
    assert "Too few patients" in point.note  # under 10 validation patients a class: said, CI widened
    out = make_classifier(job.classifier_request(tmp_path / "models" / "from-labels"), n_boot=200)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "classifier" and manifest["provenance"]["labelling"]["labels"] == 60
    assert "60 films labelled" in (out / "MODEL_CARD.md").read_text()
    # every film was read with its two exposure numbers, and the classifier carries the exposure check on the
    # same training and validation answers
    assert all(f.exposure is not None and f.exposure[1] > 0 for f in job.films if f.offered)
    check = manifest["validation"]["exposure_check"]
    assert list(check["per_class"]) == [manifest["classifier"]["operating_point"]]
    assert "## Exposure check" in (out / "MODEL_CARD.md").read_text()
    clf = Engine(out)
    held_out = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA").iterdir())[-3:]
    predictions = clf.predict([load_image(p) for p in held_out])
    assert all(set(p.probabilities) == {"No Finding", "Pneumonia"} for p in predictions)


def test_a_classifier_needs_patients_on_both_sides(kermany_flat, engine, tmp_path):
    job = LabellingJob(kermany_flat, ["No Finding", "Pneumonia"], engine=engine)
    job.prepare()
    film = job.next()
    for _ in range(4):
        film = job.answer([truth(film.name)])
    with pytest.raises(MedflipError, match="Not enough labels yet"):
        make_classifier(job.classifier_request(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_a_photograph_or_noise_in_the_folder_is_flagged_from_its_pixels(shared_data, tmp_path, engine):
    """The content check (inference.image_ood), not only the DICOM header: a colour picture and a noise PNG in a
    folder of chest films are flagged and never offered; the chest films are."""
    from PIL import Image

    from medflip_core.resources import resources_dir

    folder = tmp_path / "mixed"
    folder.mkdir()
    films = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").glob("*.jpeg"))[:3]
    for f in films:
        shutil.copy(f, folder / f.name)
    shutil.copy(resources_dir() / "icons" / "medflip.png", folder / "logo.png")
    noise = np.random.default_rng(0).integers(0, 256, (600, 600), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    job = LabellingJob(folder, ["No Finding", "Pneumonia"], where="beside", engine=engine)
    job.prepare()
    by_name = {f.name: f for f in job.films}
    assert any("colour" in flag for flag in by_name["logo.png"].flags) and not by_name["logo.png"].offered
    assert by_name["noise.png"].flags and not by_name["noise.png"].offered
    assert all(by_name[f.name].offered for f in films)


def test_a_fully_labelled_folder_makes_a_classifier_when_the_draw_left_a_class_short(shared_data, engine,
                                                                                      tmp_path):
    """A GUI walk labelled all 30 films of 30 NIH patients and was refused: the random quarter held 2 No Finding
    patients, and nothing was left to label. Training patients now move to the validation side, said in the card."""
    import csv

    from medflip_core.data.patient_sides import is_validation_patient

    rows = list(csv.DictReader((shared_data / "cxr-nih-adult" / "labels.csv").open()))
    firsts: dict[str, dict] = {}
    for r in rows:
        firsts.setdefault(r["Patient ID"], r)
    normal = [r for r in firsts.values() if r["Finding Labels"] == "No Finding"]
    pneumonia = [r for r in firsts.values() if r["Pneumonia"] == "1"]
    # 15 No Finding patients of which the patient-id draw puts 2 on the validation side; 15 Pneumonia patients
    normal = [r for r in normal if is_validation_patient(r["Patient ID"])][:2] + \
        [r for r in normal if not is_validation_patient(r["Patient ID"])][:13]
    chosen = {r["Image Index"]: "No Finding" for r in normal} | \
        {r["Image Index"]: "Pneumonia" for r in pneumonia[:15]}
    folder = tmp_path / "films"
    folder.mkdir()
    for name in chosen:
        (folder / name).symlink_to(shared_data / "cxr-nih-adult" / "images" / name)
    job = LabellingJob(folder, ["No Finding", "Pneumonia"], engine=engine)
    job.prepare()
    film = job.next()
    while film is not None:
        film = job.answer([chosen[film.name]])
    assert job.answered == len([f for f in job.films if f.offered])
    _train, val, moved = job.sides()
    assert sum(chosen[a.image] == "No Finding" for _, a in val) == 2  # the draw left it short
    out = make_classifier(job.classifier_request(tmp_path / "models" / "all-labelled"), n_boot=100)
    manifest = json.loads((out / "manifest.json").read_text())
    labelling = manifest["provenance"]["labelling"]
    assert labelling["moved_to_validation"] >= 1
    assert manifest["provenance"]["data"]["val_patients"] >= 6
    assert "moved from the training side" in (out / "MODEL_CARD.md").read_text()
    _train, val_after, moved = job.sides(fill=True)
    assert len(moved) == labelling["moved_to_validation"]
    assert len({a.patient for _, a in val_after if chosen[a.image] == "No Finding"}) == 3


def test_answers_of_one_class_leave_the_zero_shot_head(kermany_flat, engine):
    """A GUI walk answered Pneumonia four times and read "learned from 4 answers … Pneumonia 100 %"."""
    job = LabellingJob(kermany_flat, ["No Finding", "Pneumonia"], engine=engine)
    job.prepare()
    job.next()
    for _ in range(5):
        job.answer(["Pneumonia"])
    job.set_head(*refit(job.snapshot()))
    assert job.head.trained_on == 0 and job.head_kind() == "zero-shot"
    assert np.nanmax(job.probs[:, 1]) < 0.999  # not every film called Pneumonia
    while not any(a.labels == ("No Finding",) for _, a in job.sides()[0]):
        job.answer(["No Finding"])
    job.set_head(*refit(job.snapshot()))
    assert job.head.trained_on == len(job.sides()[0]) and job.head_kind().startswith("learned")


def test_a_finding_answered_on_one_side_only_keeps_its_zero_shot_row():
    """Findings (multi-label): a finding answered present on no film so far would be pushed towards 0 % on every
    film, as a single class answered alone was pushed to 100 %."""
    from medflip_core.labelling.learner import Prior, fit_learner

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 8))
    prior = Prior(["Effusion", "Edema"], True, rng.normal(size=(2, 8)), np.zeros(2))
    y = np.zeros((12, 2))
    y[:6, 0] = 1  # Effusion answered both ways; Edema never present
    head = fit_learner(x, y, [f"p{i}" for i in range(12)], prior, choose_strength=False)
    np.testing.assert_array_equal(head.weight[1], prior.weight[1])
    assert head.bias[1] == prior.bias[1] and not np.array_equal(head.weight[0], prior.weight[0])
