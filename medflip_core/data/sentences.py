"""A report corpus turned into labelled sentences for unpaired training and retrieval evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medflip_core.labeler import explain_sentence, label_sentence
from medflip_core.labels import LABEL_INDEX
from medflip_core.reports import load_sentence_corpus

NO_FINDING = LABEL_INDEX["No Finding"]


def sentence_label(sentence: str) -> np.ndarray:
    """Label vector of one sentence; a sentence that only rules findings out ("no effusion") says No Finding.

    The report-level CheXpert rule needs the whole report; for single sentences, an explicit normal
    statement or a negated finding with nothing positive or uncertain is the sentence-level reading of it.
    """
    vec = label_sentence(sentence).astype(np.float32)
    if not (vec != 0).any():
        mentions = explain_sentence(sentence)
        if mentions and all(m.status == "negative" or m.label == "No Finding" for m in mentions):
            vec[NO_FINDING] = 1.0
    return vec


def labelled_sentences(
    corpus: str | Path, max_sentences: int | None = None, seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """Sentences of a corpus with at least one label, and their (S, 14) label vectors."""
    sentences = load_sentence_corpus(corpus)
    kept: list[str] = []
    vectors: list[np.ndarray] = []
    for sentence in sentences:
        vec = sentence_label(sentence)
        if (vec != 0).any():
            kept.append(sentence)
            vectors.append(vec)
    labels = np.stack(vectors) if vectors else np.zeros((0, len(LABEL_INDEX)), dtype=np.float32)
    if max_sentences is not None and len(kept) > max_sentences:
        pick = np.sort(np.random.default_rng(seed).choice(len(kept), max_sentences, replace=False))
        kept = [kept[i] for i in pick]
        labels = labels[pick]
    return kept, labels
