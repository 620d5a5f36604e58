from __future__ import annotations

from medflip_core.data.labelled_sentences import labelled_sentences, sentence_label
from medflip_core.labeler.labels import LABEL_INDEX


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


def test_corpus_split_by_report_is_deterministic_and_disjoint(shared_data):
    from medflip_core.data.labelled_sentences import split_corpus_by_report
    from medflip_core.reports import load_reports

    corpus = shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz"
    split = split_corpus_by_report(corpus, 0.15)
    again = split_corpus_by_report(corpus, 0.15)
    assert split.held_out == again.held_out and split.train == again.train
    assert not set(split.train) & set(split.held_out)
    info = split.as_dict()
    assert info["n_reports"] == 3955 and 0.1 < info["n_held_out_reports"] / 3955 < 0.2
    # every held-out sentence is written in a held-out report and in no training report
    held_ids = set(split.held_out_report_ids)
    held_text = " ".join(r.text for r in load_reports(corpus) if r.report_id in held_ids)
    for sentence in split.held_out[:200]:
        assert sentence.split()[0] in held_text


def test_retrieval_pool_shares_no_report_with_training(shared_data):
    """The trainer's sentences (corpus_holdout > 0) and the retrieval-eval pool come from disjoint reports."""
    from medflip_core.data.labelled_sentences import split_corpus_by_report
    from medflip_core.evaluation.evaluate import balanced_sentence_pool
    from trainer.config import TrainConfig
    from trainer.training_data import build_training_data

    corpus = shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz"
    folder = shared_data / "cxr-pneumonia-kermany" / "train"
    cfg = TrainConfig(images=[str(folder)], corpus=str(corpus), corpus_holdout=0.15, max_steps=1)
    data = build_training_data(cfg, tokenize=lambda texts: {"n": len(texts)})
    trained_on = set(data.sentences.sentences)
    pool, pool_labels = balanced_sentence_pool(corpus, ["No Finding", ("Pneumonia", "Lung Opacity")], 200,
                                               held_out=0.15)
    assert len(pool) >= 200 and (pool_labels == 0).sum() == (pool_labels == 1).sum()
    assert not trained_on & set(pool)
    split = split_corpus_by_report(corpus, 0.15)
    assert set(pool) <= set(split.held_out) and trained_on <= set(split.train)
    # without the hold-out (today's default) the trainer reads every report, the pool included
    everything = build_training_data(TrainConfig(images=[str(folder)], corpus=str(corpus), max_steps=1),
                                     tokenize=lambda texts: {"n": len(texts)})
    assert set(pool) <= set(everything.sentences.sentences)
