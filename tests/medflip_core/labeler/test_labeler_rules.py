"""The labeler on sentences quoted from the IU reports (and a few written the way reports are)."""

from __future__ import annotations

import pytest

from medflip_core.labeler import explain_sentence, label_report, label_sentence
from medflip_core.labeler.labels import LABEL_INDEX


def labels_of(vec) -> dict[str, float]:
    return {name: float(vec[i]) for name, i in LABEL_INDEX.items() if vec[i] != 0}


CASES = [
    # (sentence, expected non-zero labels at sentence level)
    ("No pleural effusion or pneumothorax.", {}),
    ("Small left pleural effusion.", {"Pleural Effusion": 1}),
    ("Possible small left pleural effusion", {"Pleural Effusion": -1}),
    ("Heart size is normal.", {"No Finding": 1}),
    ("The heart is enlarged.", {"Cardiomegaly": 1}),
    ("No acute cardiopulmonary abnormality.", {"No Finding": 1}),
    ("Left basilar atelectasis, no pneumonia", {"Atelectasis": 1}),
    ("cannot exclude pneumonia", {"Pneumonia": -1}),
    ("Sternotomy wires are intact", {"Support Devices": 1}),
    ("There are no XXXX of a pleural effusion.", {}),
    ("The cardiac silhouette is enlarged with no comparison studies.", {"Cardiomegaly": 1}),
    ("No focal airspace consolidation, pleural effusion, or pneumothorax", {}),
    ("Pneumothorax has resolved.", {}),
    ("Heart is not enlarged.", {}),
    ("The lungs are normally inflated without evidence of focal airspace disease, pleural effusion, or pneumothorax.",
     {}),
    ("Streaky left basilar airspace opacities, which could reflect atelectasis and/or infection.",
     {"Lung Opacity": 1, "Atelectasis": -1, "Pneumonia": -1}),
    ("Moderate enlargement of the heart.", {"Cardiomegaly": 1}),
    ("Numerous bilateral pulmonary nodules have increased in size and number compared to prior study.",
     {"Lung Lesion": 1}),
    ("Metastatic disease is possible.", {"Lung Lesion": -1}),
    ("Malignancy cannot be confidently excluded on the available images.", {"Lung Lesion": -1}),
    ("There is a large hydropneumothorax within the left chest.", {"Pneumothorax": 1}),
    ("Prior granulomatous infection.", {}),
    ("The lungs are hyperexpanded, consistent with emphysema.", {}),
    ("Question mild pulmonary vascular congestion in a patient with prosthetic aortic valve.",
     {"Edema": -1, "Support Devices": 1}),
    ("Right upper lobe airspace consolidation Please correlate clinically for pneumonia.",
     {"Consolidation": 1, "Pneumonia": -1}),
    ("Right PICC line tip in the superior vena cava.", {"Support Devices": 1}),
    ("Mildly displaced fracture of the left 7th rib.", {"Fracture": 1}),
    ("Blunting of the left costophrenic angle.", {"Pleural Effusion": 1}),
    ("No evidence of pneumothorax.", {}),
    ("The lungs are clear.", {"No Finding": 1}),
    ("Calcified granuloma is seen.", {}),
]


@pytest.mark.parametrize(("sentence", "expected"), CASES)
def test_sentence_labels(sentence, expected):
    assert labels_of(label_sentence(sentence)) == expected


def test_report_level_no_finding_follows_chexpert():
    normal = "The heart is normal in size. The lungs are clear. No pneumothorax or pleural effusion."
    assert labels_of(label_report(normal)) == {"No Finding": 1}
    with_device = "Pacemaker in place. No acute cardiopulmonary abnormality."
    assert labels_of(label_report(with_device)) == {"No Finding": 1, "Support Devices": 1}
    abnormal = "No acute cardiopulmonary abnormality. Stable cardiomegaly."
    assert labels_of(label_report(abnormal)) == {"Cardiomegaly": 1}
    # positive beats uncertain across sentences
    assert labels_of(label_report("Possible effusion. Small right effusion.")) == {"Pleural Effusion": 1}
    # outside the label space but abnormal: not "No Finding"
    assert labels_of(label_report("Degenerative changes of the spine. No pneumothorax.")) == {}


def test_explain_gives_phrase_status_and_span():
    text = "No pneumothorax, but small left pleural effusion."
    mentions = {m.label: m for m in explain_sentence(text)}
    assert mentions["Pneumothorax"].status == "negative"
    assert mentions["Pleural Effusion"].status == "positive"
    start, end = mentions["Pleural Effusion"].span
    assert text[start:end].lower() == mentions["Pleural Effusion"].phrase.lower()
