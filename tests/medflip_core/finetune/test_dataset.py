"""Labelled sets from real ImageFolders: loose class names, the patient split, and the bad inputs a user meets."""

from __future__ import annotations

from pathlib import Path

import pytest

from medflip_core.errors import MedflipError
from medflip_core.finetune.dataset import (
    check_trainable,
    from_image_folder,
    load_labelled,
    loose_key,
    split_by_patient,
)


def _link(src: Path, dst: Path, names: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        (dst / n).symlink_to(src / n)


@pytest.fixture(scope="module")
def kermany(shared_data) -> Path:
    return shared_data / "cxr-pneumonia-kermany" / "train"


def test_class_names_match_loosely():
    assert loose_key("PNEUMONIA") == loose_key("Pneumonia") == "pneumonia"
    assert loose_key("NORMAL") == loose_key("No Finding")
    assert loose_key("pleural_effusion") == loose_key("Pleural Effusion")


def test_folder_classes_picked_in_the_asked_order(kermany, tmp_path):
    root = tmp_path / "data"
    for cls in ("NORMAL", "PNEUMONIA"):
        _link(kermany / cls, root / cls, sorted(p.name for p in (kermany / cls).iterdir())[:6])
    data = from_image_folder(root, ["pneumonia", "No Finding"])
    assert data.classes == ["PNEUMONIA", "NORMAL"] and not data.multi_label
    assert len(data) == 12 and sorted(data.targets.tolist()) == [0] * 6 + [1] * 6
    assert all(p.parent.name == data.classes[t] for p, t in zip(data.paths, data.targets, strict=True))


def test_unknown_class_is_named_with_the_available_ones(kermany, tmp_path):
    root = tmp_path / "data"
    for cls in ("NORMAL", "PNEUMONIA"):
        _link(kermany / cls, root / cls, sorted(p.name for p in (kermany / cls).iterdir())[:2])
    with pytest.raises(MedflipError, match=r"unknown class folder: Effusion \(available: NORMAL, PNEUMONIA\)"):
        from_image_folder(root, ["Pneumonia", "Effusion"])


def test_one_class_only_is_refused(kermany, tmp_path):
    root = tmp_path / "data"
    _link(kermany / "NORMAL", root / "NORMAL", sorted(p.name for p in (kermany / "NORMAL").iterdir())[:4])
    with pytest.raises(MedflipError, match="only one class"):
        check_trainable(load_labelled(root))


def test_class_with_too_few_patients_for_validation(kermany, tmp_path):
    root = tmp_path / "data"
    _link(kermany / "NORMAL", root / "NORMAL", sorted(p.name for p in (kermany / "NORMAL").iterdir())[:30])
    person = sorted(p.name for p in (kermany / "PNEUMONIA").iterdir() if p.name.startswith("person1000_"))
    _link(kermany / "PNEUMONIA", root / "PNEUMONIA", person)  # one patient, however many images
    data = load_labelled(root)
    check_trainable(data)
    with pytest.raises(MedflipError, match=r"class PNEUMONIA has 0 validation patient\(s\) \(1 in all\)"):
        split_by_patient(data, 0.25)


def test_split_keeps_every_patient_on_one_side(kermany, tmp_path):
    root = tmp_path / "data"
    for cls in ("NORMAL", "PNEUMONIA"):
        _link(kermany / cls, root / cls, sorted(p.name for p in (kermany / cls).iterdir())[:40])
    data = load_labelled(root)
    train, val = split_by_patient(data, 0.25, seed=1)
    assert len(train) + len(val) == len(data) and set(train).isdisjoint(val)
    assert {data.patients[i] for i in train}.isdisjoint({data.patients[i] for i in val})
    assert len({data.patients[i] for i in val}) < len({data.patients[i] for i in train})


def test_missing_or_wrong_source_is_a_clear_error(tmp_path):
    with pytest.raises(MedflipError, match="no such folder or file"):
        load_labelled(tmp_path / "nowhere")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(MedflipError, match="neither an ImageFolder"):
        load_labelled(text)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedflipError, match="no class sub-folders"):
        load_labelled(tmp_path / "empty")


def test_given_validation_patients_are_exactly_the_base_models_held_out_ones(shared_data):
    """A probe judged against a base model that pre-trained on the same CSV validates on the patients the base
    held out (data.label_csv.validation_patients), and on no other."""
    from medflip_core.data.label_csv import validation_patients
    from medflip_core.finetune.dataset import split_by_given_patients

    csv = shared_data / "cxr-nih-adult" / "labels.csv"
    held_out = validation_patients(csv, 0.15, 0)
    data = load_labelled(csv, labels=["No Finding", "Pneumonia"])
    train_idx, val_idx = split_by_given_patients(data, held_out)
    val_patients = {data.patients[i] for i in val_idx}
    assert val_patients <= held_out and len(val_patients) >= 0.9 * len(held_out)
    assert not val_patients & {data.patients[i] for i in train_idx}
    assert len(train_idx) + len(val_idx) == len(data)
    with pytest.raises(MedflipError, match="none of the 2 given validation patients"):
        split_by_given_patients(data, {"nobody-1", "nobody-2"})


def test_patient_list_file_round_trip_and_errors(shared_data, tmp_path):
    from medflip_core.data.label_csv import validation_patients
    from medflip_core.finetune.dataset import read_patient_list

    held_out = validation_patients(shared_data / "cxr-nih-adult" / "labels.csv", 0.15, 0)
    listed = tmp_path / "val.txt"
    listed.write_text("# the base model's held-out patients\n" + "\n".join(sorted(held_out)) + "\n\n")
    assert read_patient_list(listed) == held_out
    (tmp_path / "empty.txt").write_text("# nobody\n")
    with pytest.raises(MedflipError, match="names no patient"):
        read_patient_list(tmp_path / "empty.txt")
    with pytest.raises(MedflipError, match="cannot read the patient list"):
        read_patient_list(tmp_path / "missing.txt")


def test_a_labelling_tab_csv_is_fine_tuned_with_the_labelling_tabs_validation_patients(kermany, labelling_csv,
                                                                                       tmp_path):
    """'Tune the tower from these labels…' (and `medflip finetune` on the same labels.csv) validates on the
    patients the Labelling tab measures its classifiers on: a split of its own trained on some of them."""
    from medflip_core.data.patient_sides import csv_validation_patients
    from medflip_core.finetune.dataset import LABELLING_RULE, split_for_finetune

    table = labelling_csv(tmp_path / "labels.csv")
    data = load_labelled(table, image_root=kermany)
    held = csv_validation_patients(table)
    assert held and held < set(data.patients)
    split = split_for_finetune(data, table, None, 0.2, 0)
    assert split.rule == LABELLING_RULE
    assert {data.patients[i] for i in split.val_idx} == held
    assert not held & {data.patients[i] for i in split.train_idx}
    assert len(split.train_idx) + len(split.val_idx) == len(data)
    # the leak this closes: the seeded fraction split of the same CSV trains on Labelling validation patients
    own_train, _ = split_by_patient(data, 0.2, 0)
    assert held & {data.patients[i] for i in own_train}
    # patients given on the command line still win, and a CSV that is not the Labelling tab's keeps the seeded split
    given = set(sorted(data.patients)[::3])
    assert {data.patients[i] for i in split_for_finetune(data, table, given, 0.2, 0).val_idx} == given
    plain = tmp_path / "plain.csv"
    plain.write_text(table.read_text().replace("Chosen By,Labelled At", "Source,Date", 1))
    other = split_for_finetune(load_labelled(plain, image_root=kermany), plain, None, 0.2, 0)
    assert other.rule == "validation fraction 0.2, seed 0"
    assert other.val_idx.tolist() == split_by_patient(data, 0.2, 0)[1].tolist()


def test_a_labelling_csv_without_validation_patients_says_to_label_more(kermany, labelling_csv, tmp_path):
    from medflip_core.data.patient_sides import csv_validation_patients, is_validation_patient
    from medflip_core.finetune.dataset import split_for_finetune

    table = labelling_csv(tmp_path / "labels.csv")
    lines = table.read_text().splitlines()
    drawn_training = [ln for ln in lines[1:] if not is_validation_patient(ln.split(",")[2])]
    kept = [ln for answer in (",No Finding,", ",Pneumonia,") for ln in [x for x in drawn_training if answer in x][:3]]
    # three answers a class, none drawn for validation: too few to move any there (each class keeps 3 for training)
    table.write_text("\n".join([lines[0], *kept]) + "\n")
    data = load_labelled(table, image_root=kermany)
    assert csv_validation_patients(table) == set()
    with pytest.raises(MedflipError, match="none of its patients is on the Labelling tab's validation side yet"):
        split_for_finetune(data, table, None, 0.2, 0)
