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
