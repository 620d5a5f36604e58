"""Label CSVs (NIH and CheXpert style) on the real NIH sample and on small CSVs pointing at real images."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medflip_core.data.label_csv import drop_unreadable, read_label_csv, split_table
from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import LABEL_INDEX


@pytest.fixture(scope="module")
def nih(shared_data):
    return shared_data / "cxr-nih-adult"


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_nih_labels_csv_multi_label(nih):
    table = read_label_csv(nih / "labels.csv")
    assert table.style == "nih" and len(table) == 721 and len(set(table.patients)) == 497
    assert table.multi_label and "Pneumonia" in table.classes and "No Finding" in table.classes
    assert table.targets[:, table.classes.index("No Finding")].sum() == 372
    assert table.targets[:, table.classes.index("Pneumonia")].sum() == 334
    assert all(p.is_file() for p in table.images[:20])
    assert all(p.name.startswith(pid) for p, pid in zip(table.images, table.patients, strict=True))
    records = table.to_records()
    effusion = table.classes.index("Effusion")
    i = int(np.flatnonzero(table.targets[:, effusion])[0])
    assert records[i].labels[LABEL_INDEX["Pleural Effusion"]] == 1
    infiltration = int(np.flatnonzero(table.targets[:, table.classes.index("Infiltration")])[0])
    assert records[infiltration].labels[LABEL_INDEX["Lung Opacity"]] == 1


def test_nih_pneumonia_vs_no_finding_split_by_patient(nih):
    table = read_label_csv(nih / "labels.csv", labels=["No Finding", "pneumonia"])
    assert table.classes == ["No Finding", "Pneumonia"] and not table.multi_label
    assert len(table) == 721 - table.dropped["none of the classes"]
    train, val = split_table(table, 0.15, seed=0)
    assert not set(train.patients) & set(val.patients)
    assert len(train) + len(val) == len(table)
    assert set(val.class_index.tolist()) == {0, 1} and set(train.class_index.tolist()) == {0, 1}
    again, _ = split_table(table, 0.15, seed=0)
    assert again.images == train.images


@pytest.fixture
def chexpert_csv(nih, tmp_path):
    """A CheXpert-style train.csv whose Path column points at real NIH images laid out as patient/study/view."""
    names = sorted((nih / "images").iterdir())[:12]
    rows = []
    values = [("1", "0", ""), ("0", "1", "-1"), ("", "1.0", "0.0"), ("1", "-1", "1")]
    for k, src in enumerate(names):
        rel = f"CheXpert-v1.0-small/train/patient{k // 2:05d}/study1/view{k % 2 + 1}_frontal.jpg"
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(src)
        rows.append([rel, "Female", "60", "Frontal", "AP", *values[k % 4]])
    return _write(tmp_path / "train.csv", ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding",
                                           "Pleural Effusion", "Cardiomegaly"], rows)


def test_chexpert_style_with_uncertain_and_blank(chexpert_csv, tmp_path):
    table = read_label_csv(chexpert_csv, image_root=tmp_path)
    assert table.style == "chexpert" and table.classes == ["No Finding", "Pleural Effusion", "Cardiomegaly"]
    assert table.multi_label and len(table) == 12
    assert table.patients[:4] == ["patient00000", "patient00000", "patient00001", "patient00001"]
    # row 2 (1-based data row 2): No Finding 0, Effusion 1, Cardiomegaly -1 -> uncertain, read as absent
    assert table.targets[1].tolist() == [0, 1, 0] and table.uncertain[1].tolist() == [False, False, True]
    positive = read_label_csv(chexpert_csv, image_root=tmp_path, uncertain="positive")
    assert positive.targets[1].tolist() == [0, 1, 1]
    assert positive.to_records()[1].labels[LABEL_INDEX["Cardiomegaly"]] == 1


def test_missing_images_are_named_with_rows_and_counts(nih, tmp_path):
    rows = [["00001280_004.jpg", "No Finding", "00001280"], ["nothere_000.jpg", "Pneumonia", "1"],
            ["gone_001.jpg", "Pneumonia", "2"]]
    path = _write(tmp_path / "labels.csv", ["Image Index", "Finding Labels", "Patient ID"], rows)
    with pytest.raises(MedflipError, match=r"2 of 3 image files are missing .*rows 3, 4"):
        read_label_csv(path, image_root=nih / "images")


def test_unknown_columns_values_and_labels(chexpert_csv, nih, tmp_path):
    with pytest.raises(MedflipError, match="unknown label"):
        read_label_csv(chexpert_csv, image_root=tmp_path, labels=["Pneumonia"])
    with pytest.raises(MedflipError, match="no patient column 'Subject'"):
        read_label_csv(chexpert_csv, image_root=tmp_path, patient_column="Subject")
    text = chexpert_csv.read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",yes"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(MedflipError, match=r"1 unknown value.*line 4: Cardiomegaly='yes'"):
        read_label_csv(bad, image_root=tmp_path)
    other = _write(tmp_path / "other.csv", ["file", "label"], [["a.jpg", "x"]])
    with pytest.raises(MedflipError, match="neither NIH style"):
        read_label_csv(other)


def test_one_class_and_too_few_patients_for_validation(nih, tmp_path):
    only = read_label_csv(nih / "labels.csv", labels=["Pneumonia"])
    with pytest.raises(MedflipError, match="only one class"):
        split_table(only, 0.15)
    rare = read_label_csv(nih / "labels.csv", labels=["No Finding", "Hernia"])
    with pytest.raises(MedflipError, match=r"class Hernia has 3 image\(s\) of \d patient\(s\): too few"):
        split_table(rare, 0.15)


def test_unreadable_images_are_skipped_and_reported(nih, tmp_path):
    broken = tmp_path / "00009999_000.jpg"
    broken.write_bytes(b"not a jpeg at all")
    good = sorted((nih / "images").iterdir())[:3]
    rows = [[str(p), "No Finding", p.name[:8]] for p in good] + [[str(broken), "Pneumonia", "00009999"]]
    table = read_label_csv(_write(tmp_path / "labels.csv", ["Image Index", "Finding Labels", "Patient ID"], rows))
    kept, skipped = drop_unreadable(table)
    assert len(kept) == 3 and len(skipped) == 1 and "line 5" in skipped[0]
