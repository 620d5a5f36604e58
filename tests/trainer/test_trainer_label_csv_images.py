"""Pre-training on what a researcher has: the Labelling tab's labels.csv as --images (a GUI walk found that
pre-training only took class sub-folders), and a flat study folder refused with what it can be used as."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medflip_core.data.patient_sides import is_validation_patient
from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import CHEXPERT_LABELS
from trainer.config import TrainConfig
from trainer.training_data import build_training_data

PER_CLASS = 12
HELD_BY_LABELLING: set[str] = set()  # filled by the fixture: the Labelling tab's validation patients


@pytest.fixture(scope="module")
def labelled_study(shared_data, tmp_path_factory) -> Path:
    """24 real Kermany films in a flat folder, labelled through the real labelling job (bundled model), with the
    truth from the file names: the job writes labels.csv beside the films."""
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine
    from medflip_core.labelling.job import LabellingJob

    study = tmp_path_factory.mktemp("study")
    for cls in ("NORMAL", "PNEUMONIA"):
        for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / cls).iterdir())[:PER_CLASS]:
            (study / f.name).symlink_to(f)
    engine = Engine(resolve_model(None), threads=1)
    job = LabellingJob(study, ["No Finding", "Pneumonia"], where="beside", engine=engine)
    job.prepare()
    film = job.next()
    while film is not None:
        film = job.answer(["Pneumonia" if film.name.startswith("person") else "No Finding"])
    assert (study / "labels.csv").is_file()
    _, val, _ = job.sides(fill=True)  # the validation side a classifier made there is measured on
    HELD_BY_LABELLING.update(a.patient for _, a in val)
    return study


def test_a_labelling_csv_is_training_data_split_by_patient(labelled_study):
    data = build_training_data(TrainConfig(images=[str(labelled_study / "labels.csv")], val_fraction=0.25), None)
    assert len(data.train) + len(data.val) == 2 * PER_CLASS
    assert not {r.patient_id for r in data.train} & {r.patient_id for r in data.val}
    # the Labelling tab's own validation patients (drawn by id, and moved there for a classifier) stay
    # validation: its classifiers are measured on them
    assert HELD_BY_LABELLING and {r.patient_id for r in data.val} >= HELD_BY_LABELLING
    assert not any(is_validation_patient(r.patient_id) for r in data.train)
    assert data.class_names == ["No Finding", "Pneumonia"] and data.class_prompts == ["No Finding", "Pneumonia"]
    for record in data.train + data.val:  # the answers, in the label space the MedFLIP loss links reports through
        truth = "Pneumonia" if record.path.name.startswith("person") else "No Finding"
        assert record.path.parent == labelled_study and record.class_name == truth
        named = {CHEXPERT_LABELS[i] for i in np.flatnonzero(record.labels)}
        # as a PNEUMONIA class folder: a pneumonia answer also carries Lung Opacity (NIH's mapping)
        assert named == ({"Pneumonia", "Lung Opacity"} if truth == "Pneumonia" else {"No Finding"})


@pytest.mark.slow
def test_pretrain_on_a_labelling_csv_runs_and_validates_on_its_patients(tt, labelled_study, corpus, tmp_path):
    code, events, err = tt.run("pretrain", tt.args(labelled_study / "labels.csv", corpus, tmp_path, "--max-steps",
                                                   "2", "--eval-every", "2", "--checkpoint-every", "2"))
    assert code == 0, err[-2000:]
    assert events[0]["n_train"] + events[0]["n_val"] == 2 * PER_CLASS and events[0]["n_val"] > 0
    evals = [e for e in events if e["event"] == "eval"]
    assert evals and evals[-1]["n_val"] > 0 and 0 <= evals[-1]["val_auc"] <= 1


def test_a_flat_folder_says_what_it_can_be_used_as(labelled_study, tmp_path):
    with pytest.raises(MedflipError, match="holds its films directly") as caught:
        build_training_data(TrainConfig(images=[str(labelled_study)]), None)
    assert "--unlabelled" in str(caught.value) and "labels.csv" in str(caught.value)
    picture = next(p for p in labelled_study.iterdir() if p.suffix == ".jpeg")
    with pytest.raises(MedflipError, match="is a file: --images takes image folders"):
        build_training_data(TrainConfig(images=[str(picture)]), None)


def test_films_labelled_outside_the_label_space_are_left_out_or_refused(labelled_study, tmp_path, capfd):
    """Labels the model's label space does not name ("Bacterial") cannot link a film to reports: such films are
    left out (and said so), and a CSV with nothing else is refused with what to do instead."""
    films = sorted(p.name for p in labelled_study.iterdir() if p.suffix == ".jpeg")
    rows = ["Image Index,Finding Labels,Patient ID"]
    for i, name in enumerate(films):
        kind = "Bacterial" if "bacteria" in name else "Viral" if "virus" in name else "No Finding"
        rows.append(f"{name},{kind},{i}")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join(rows) + "\n")
    data = build_training_data(TrainConfig(images=[str(mixed)], image_root=str(labelled_study), val_fraction=0.25),
                               None)
    normal = {n for n in films if not n.startswith("person")}
    assert {r.path.name for r in data.train} < normal and len(data.train) >= len(normal) // 2
    assert data.val == []  # one class left: zero-shot validation has nothing to compare
    assert "have labels outside the model's label space and are left out" in capfd.readouterr().err
    only = tmp_path / "only.csv"
    only.write_text("\n".join(r for r in rows if "No Finding" not in r) + "\n")
    with pytest.raises(MedflipError, match="no image has a label of the model's label space"):
        build_training_data(TrainConfig(images=[str(only)], image_root=str(labelled_study)), None)
