"""The exposure check on real films: a site confound is flagged, labels that exposure cannot read are not."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medflip_core.evaluation.fewshot import build_tasks
from medflip_core.finetune.exposure_check import exposure_check
from medflip_core.imaging import load_image
from medflip_core.imaging.exposure import film_exposure

PER_SITE = 40


@pytest.fixture(scope="module")
def two_sites(shared_data):
    """Exposure numbers of 40 pediatric Kermany NORMAL films and 40 adult NIH No Finding films (one per patient),
    their site (0 Kermany, 1 NIH) and their patients; every other patient is on the validation side."""
    kermany = build_tasks(shared_data, ("kermany_pneumonia_normal",), max_per_class=PER_SITE)
    task = kermany["kermany_pneumonia_normal"]
    paths = [p for p, y in zip(task.paths, task.labels, strict=True) if y == 0][:PER_SITE]
    patients = [f"k-{p.name.split('_')[0]}" for p in paths]
    seen: set[str] = set()
    with open(shared_data / "cxr-nih-adult" / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["Finding Labels"] == "No Finding" and row["Patient ID"] not in seen and len(seen) < PER_SITE:
                seen.add(row["Patient ID"])
                paths.append(shared_data / "cxr-nih-adult" / "images" / row["Image Index"])
                patients.append(f"n-{row['Patient ID']}")
    x = np.stack([film_exposure(load_image(p)) for p in paths])
    site = np.array([0] * PER_SITE + [1] * (len(paths) - PER_SITE))
    val = np.arange(len(paths)) % 2 == 1
    return x, site, patients, val


def _check(x, y, patients, val, model_auc=None):
    ind = np.stack([1 - y, y], axis=1)
    return exposure_check(x[~val], ind[~val], x[val], ind[val], [p for p, v in zip(patients, val, strict=True) if v],
                          ["Kermany", "NIH"], model_auc or {}, positive=1, n_boot=300)


def test_a_site_confound_is_flagged_with_the_classifiers_figure_beside_it(two_sites):
    x, site, patients, val = two_sites
    check = _check(x, site, patients, val, {"NIH": 0.99, "Kermany": 0.99})
    assert list(check["per_class"]) == ["NIH"]  # two classes: one vs the other, said once
    nih = check["per_class"]["NIH"]
    assert nih["roc_auc"] > 0.75 and nih["ci95"][0] > 0.5 and nih["classifier_roc_auc"] == 0.99
    assert check["flagged"] == ["NIH"]
    assert check["headline"].startswith("Film exposure alone separates NIH")
    assert "0.99" in check["message"] and "acquisition" in check["message"]


def test_labels_exposure_cannot_read_are_not_flagged(two_sites):
    x, site, patients, val = two_sites
    shuffled = np.random.default_rng(7).permutation(site)  # the same films, labels unrelated to the films
    check = _check(x, shuffled, patients, val)
    assert check["flagged"] == [] and check["per_class"]["NIH"]["ci95"][0] <= 0.5
    assert "does not separate" in check["headline"] and "not clearly above chance" in check["message"]


def test_films_without_numbers_are_left_out_and_a_missing_class_gives_no_check(two_sites):
    x, site, patients, val = two_sites
    holed = x.copy()
    holed[::7] = np.nan  # read without exposure numbers (e.g. unreadable now): left out, not a crash
    assert _check(holed, site, patients, val)["flagged"] == ["NIH"]
    only_kermany = np.zeros_like(site)
    assert _check(x, only_kermany, patients, val) is None
