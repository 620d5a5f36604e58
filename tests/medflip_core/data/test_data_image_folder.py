from __future__ import annotations

import json

import numpy as np
import pytest

from medflip_core.data.image_folder import (
    index_image_folder,
    load_class_map,
    patient_id_from_name,
    patient_split,
)
from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import LABEL_INDEX


@pytest.mark.parametrize(("name", "patient"), [
    ("person1000_bacteria_2931.jpeg", "person1000"),
    ("person1000_virus_1681.jpeg", "person1000"),
    ("IM-0115-0001.jpeg", "IM-0115"),
    ("NORMAL2-IM-1419-0001.jpeg", "NORMAL2-IM-1419"),
    ("IM-0001-0001-0002.jpeg", "IM-0001"),
    ("scan_17.png", "scan_17"),
    ("00001280_004.jpg", "00001280"),  # NIH ChestX-ray14: 8-digit patient, image number
    ("00001280_000.png", "00001280"),
])
def test_patient_ids_from_kermany_names(name, patient):
    assert patient_id_from_name(name) == patient


def test_custom_patient_pattern():
    assert patient_id_from_name("p0042_view2.png", r"^(p\d+)_") == "p0042"


@pytest.fixture(scope="module")
def kermany(shared_data):
    return index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")


def test_index_maps_classes_into_the_label_space(kermany):
    assert len(kermany) == 5216
    normal = next(r for r in kermany if r.class_name == "NORMAL")
    pneu = next(r for r in kermany if r.class_name == "PNEUMONIA")
    assert normal.labels[LABEL_INDEX["No Finding"]] == 1 and normal.labels.sum() == 1
    assert pneu.labels[LABEL_INDEX["Pneumonia"]] == 1 and pneu.labels[LABEL_INDEX["Lung Opacity"]] == 1


def test_patient_split_is_disjoint_stratified_and_deterministic(kermany):
    train, val = patient_split(kermany, 0.15, seed=0)
    assert len(train) + len(val) == 5216
    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    share = np.mean([r.class_name == "PNEUMONIA" for r in val])
    assert abs(share - 3875 / 5216) < 0.05
    assert 0.10 < len(val) / 5216 < 0.20
    again, _ = patient_split(kermany, 0.15, seed=0)
    assert [r.path for r in again] == [r.path for r in train]


def test_mapping_file_and_unknown_classes(tmp_path, shared_data):
    root = tmp_path / "data"
    for cls in ("COVID", "healthy"):
        (root / cls).mkdir(parents=True)
        src = shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"
        (root / cls / "a.jpeg").symlink_to(src)
    with pytest.raises(MedflipError, match="not a label of the label space"):
        index_image_folder(root)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"COVID": ["Pneumonia", "Lung Opacity"], "healthy": "No Finding"}))
    records = index_image_folder(root, load_class_map(mapping))
    assert {r.class_name for r in records} == {"COVID", "healthy"}


def test_folder_errors(tmp_path):
    with pytest.raises(MedflipError, match="does not exist"):
        index_image_folder(tmp_path / "nope")
    with pytest.raises(MedflipError, match="no class sub-folders"):
        index_image_folder(tmp_path)
    (tmp_path / "NORMAL").mkdir()
    with pytest.raises(MedflipError, match="holds no images"):
        index_image_folder(tmp_path)
