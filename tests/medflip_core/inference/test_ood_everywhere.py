"""Issue 23 items 6 and 8 (batch CSV), on the real bundled model and real films: out-of-distribution warnings
travel with retrieval results, text-search hits and batch rows, and the batch CSV says how it was made."""

from __future__ import annotations

import csv
import os
import stat

import pytest

from medflip_core.inference.batch import describe_run, write_csv
from medflip_core.inference.image_ood import FAR
from medflip_core.inference.retrieval import ImageHit, order_search_hits
from medflip_core.resources import resources_dir
from medflip_core.session import Session, load_paths

LEG, DOG = "RG3_J2KI.dcm", "highdicom_dx_animal_lateral.dcm"
CHESTS = ("RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm")
LABELS = ["No Finding", "Pneumonia"]


@pytest.fixture(scope="module")
def engine():
    from medflip_core.inference.engine import Engine

    return Engine(resources_dir() / "models" / "medflip-default", threads=2)


@pytest.fixture(scope="module")
def session(engine, shared_data):
    s = Session()
    s.set_engine(engine)
    s.add_images(load_paths([str(shared_data / "dicom" / n) for n in (LEG, DOG, *CHESTS)]).images)
    return s


def test_retrieval_of_a_leg_film_carries_the_warning_and_a_chest_carries_none(session):
    leg = session.retrieve(0, 3)
    assert len(leg) == 3 and [h.score for h in leg] == sorted((h.score for h in leg), reverse=True)
    assert any("EXTREMITY is not a chest" in w for w in leg.warnings)
    chest = session.retrieve(2, 3)
    assert len(chest.hits) == 3 and chest.warnings == []


def test_text_search_lists_chests_first_and_marks_the_leg_and_the_dog(session, engine):
    """The raw cosine ranks an out-of-distribution film above the chests (issue 23); the search lists every chest
    before any out-of-distribution film, each group best first, and says why a film is flagged."""
    import numpy as np

    raw = engine.rank_images("pleural effusion", np.concatenate([session.embedding(i).embedding for i in range(4)]))
    # an out-of-distribution film (the leg with v3, the dog with v4) is the raw top hit: what a researcher must not
    # be shown as best
    assert raw[0][0] in (0, 1)
    hits = session.search("pleural effusion")
    assert [h.name for h in hits[:2]] == sorted(CHESTS, key=lambda n: -next(h.score for h in hits if h.name == n))
    assert {h.name for h in hits[2:]} == {LEG, DOG} and all(h.out_of_distribution for h in hits[2:])
    assert not any(h.out_of_distribution for h in hits[:2])
    assert hits[2].score >= hits[3].score
    leg = next(h for h in hits if h.name == LEG)
    assert any("EXTREMITY" in w for w in leg.warnings)
    dog = next(h for h in hits if h.name == DOG)
    assert any("not a human" in w for w in dog.warnings) and any("lateral" in w for w in dog.warnings)


def test_order_search_hits_keeps_ties_in_their_order():
    hits = [ImageHit(0, 0.9, "a", ("leg",)), ImageHit(1, 0.2, "b"), ImageHit(2, 0.2, "c"), ImageHit(3, 0.5, "d")]
    assert [h.index for h in order_search_hits(hits)] == [3, 1, 2, 0]


def test_batch_rows_flag_ood_apart_from_notes_and_the_csv_names_its_run(session, engine, shared_data, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in (LEG, DOG, *CHESTS):
        (folder / name).symlink_to(shared_data / "dicom" / name)
    rows = session.score_folder(folder, LABELS)
    by_name = {os.path.basename(r["path"]): r for r in rows}
    assert any("EXTREMITY" in w for w in by_name[LEG]["warnings"])
    assert all(not by_name[n]["warnings"] for n in CHESTS)
    assert all(r["label_mode"].startswith("one class per image (automatic") and "notes" in r for r in rows)
    # the batch scores as the Zero-shot tab does, in the mode chosen there, and says which
    chosen = session.score_folder(folder, LABELS, mode="independent")
    chest = next(r for r in chosen if r["path"].endswith(CHESTS[1]))
    assert chest["label_mode"].startswith("findings, each present vs absent (chosen by the user")
    tab = session.zero_shot(3, LABELS, [], "independent")
    assert list(chest["scores"].values()) == pytest.approx([float(p) for p in tab.probs[0]], abs=1e-6)
    run = describe_run(engine, LABELS)
    assert run.model == "medflip-default" and engine.bundle.manifest["zero_shot_prompts"]["name"] in run.prompts
    reordered = [by_name[n] for n in (DOG, CHESTS[1], LEG, CHESTS[0])]  # e.g. a table sorted by a column
    old = os.umask(0o022)
    try:
        out = write_csv(reordered, LABELS, tmp_path / "scores", run)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    with open(out, newline="") as fh:
        header = next(csv.reader(fh))
        fh.seek(0)
        lines = list(csv.DictReader(fh))
    assert header[-8:] == ["model", "model_version", "label_mode", "prompts", "templates", "uncalibrated_labels",
                           "unvalidated_labels", "abnormality_like_labels"]
    assert {r["unvalidated_labels"] for r in lines} == {""}  # No Finding and Pneumonia: measured on both sources
    assert {r["abnormality_like_labels"] for r in lines} == {""}  # the normal-vs-pneumonia question: no note
    sha = engine.bundle.manifest["files"]["image_encoder.onnx"]["sha256"][:12]
    assert {r["model_version"] for r in lines} == {f"created {engine.bundle.manifest['created']}, image encoder "
                                                   f"sha256 {sha}"}
    assert [r["file"] for r in lines] == [DOG, CHESTS[1], LEG, CHESTS[0]]
    assert {r["model"] for r in lines} == {"medflip-default"}
    assert all(r["label_mode"].startswith("one class per image (automatic") for r in lines)
    assert "EXTREMITY" in next(r for r in lines if r["file"] == LEG)["out_of_distribution"]
    assert {r["uncalibrated_labels"] for r in lines} == {""}  # both labels are the model's own
    # a GUI walk: a typed label outside the label space was marked in the Zero-shot tab, not in the batch's file
    free = ["Pneumonia", "COVID-19", "banana"]
    write_csv(session.score_folder(folder, free), free, tmp_path / "free.csv", describe_run(engine, free))
    with open(tmp_path / "free.csv", newline="") as fh:
        assert {r["uncalibrated_labels"] for r in csv.DictReader(fh)} == {"COVID-19 | banana"}
    typed = describe_run(engine, LABELS, ["an x-ray showing {label}.", "{label}."])
    assert typed.prompts.startswith("templates typed by the user") and typed.templates == ("an x-ray showing {label}.",
                                                                                   "{label}.")
    write_csv(rows, LABELS, tmp_path / "typed.csv", typed)
    with open(tmp_path / "typed.csv", newline="") as fh:
        assert next(csv.DictReader(fh))["templates"] == "an x-ray showing {label}. | {label}."


def test_medflip_retrieve_warns_for_the_leg_film(shared_data, capsys):
    import json

    from medflip_core.cli import main

    model = str(resources_dir() / "models" / "medflip-default")
    assert main(["retrieve", str(shared_data / "dicom" / LEG), "--k", "2", "--model", model, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 2 and any("EXTREMITY is not a chest" in w for w in out["warnings"])
    assert main(["retrieve", str(shared_data / "dicom" / LEG), "--k", "2", "--model", model]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("# warning: body part EXTREMITY")  # the tags first, then what the image shows
    assert text[1].startswith(f"# warning: {FAR}") and text[2].startswith("  1. ")
    assert main(["retrieve", str(shared_data / "dicom" / CHESTS[0]), "--k", "2", "--model", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
