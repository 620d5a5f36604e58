from __future__ import annotations

from medflip_core.data.sentences import labelled_sentences, sentence_label
from medflip_core.labels import LABEL_INDEX


def test_ruling_out_findings_reads_as_no_finding():
    assert sentence_label("No pleural effusion or pneumothorax.")[LABEL_INDEX["No Finding"]] == 1
    vec = sentence_label("Right lower lobe pneumonia.")
    assert vec[LABEL_INDEX["Pneumonia"]] == 1 and vec[LABEL_INDEX["No Finding"]] == 0
    assert not sentence_label("Comparison is made to the prior study.").any()


def test_iu_corpus_gives_labelled_sentences(shared_data):
    sentences, labels = labelled_sentences(shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz")
    assert len(sentences) == len(labels) > 4000
    assert (labels != 0).any(axis=1).all()
    assert (labels[:, LABEL_INDEX["Pneumonia"]] == 1).sum() > 40
    sub, sub_labels = labelled_sentences(shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz", max_sentences=100)
    assert len(sub) == len(sub_labels) == 100 and set(sub) <= set(sentences)
