from __future__ import annotations

import numpy as np
import pytest

from medflip_core.labeler.labels import CHEXPERT_LABELS, LABEL_INDEX, UNCERTAIN, label_vector, normalise_label_name


def test_fourteen_chexpert_observations():
    assert len(CHEXPERT_LABELS) == 14 and CHEXPERT_LABELS[0] == "No Finding"
    assert LABEL_INDEX["Support Devices"] == 13


@pytest.mark.parametrize(("raw", "canonical"), [("NORMAL", "No Finding"), ("pleural_effusion", "Pleural Effusion"),
                                                ("PNEUMONIA", "Pneumonia"), ("Pneumoperitoneum", "Pneumoperitoneum")])
def test_normalise(raw, canonical):
    assert normalise_label_name(raw) == canonical


def test_label_vector_positive_wins_over_uncertain():
    vec = label_vector(["Pneumonia"], uncertain=["Pneumonia", "Edema"])
    assert vec[LABEL_INDEX["Pneumonia"]] == 1 and vec[LABEL_INDEX["Edema"]] == UNCERTAIN
    assert vec.dtype == np.float32 and np.count_nonzero(vec) == 2
