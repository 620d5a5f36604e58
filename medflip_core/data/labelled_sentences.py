"""A report corpus turned into labelled sentences for unpaired training and retrieval evaluation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.labeler import explain_sentence, label_sentence
from medflip_core.labeler.labels import LABEL_INDEX
from medflip_core.reports import clean_deid, load_reports, load_sentence_corpus, split_sentences

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
    return _labelled(load_sentence_corpus(corpus), max_sentences, seed)


def _labelled(sentences: list[str], max_sentences: int | None, seed: int) -> tuple[list[str], np.ndarray]:
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


REPORT_SPLIT_SEED = 0  # the held-out reports are a property of the corpus, not of a training run


def is_held_out(report_id: str, fraction: float, seed: int = REPORT_SPLIT_SEED) -> bool:
    """Deterministic, order-free choice of held-out reports: a hash of the report id against `fraction`."""
    digest = hashlib.sha256(f"{seed}:{report_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _usable(sentence: str) -> str | None:
    cleaned = clean_deid(sentence)
    return cleaned if len(cleaned.split()) >= 2 and any(c.isalpha() for c in cleaned) else None


@dataclass(frozen=True)
class CorpusSplit:
    """Sentences of training reports, and sentences found ONLY in held-out reports (for retrieval evaluation)."""

    train: list[str]
    held_out: list[str]
    n_reports: int
    held_out_report_ids: list[str]
    fraction: float
    seed: int

    def as_dict(self) -> dict:
        ids = "\n".join(sorted(self.held_out_report_ids)).encode()
        return {"split": "by report", "held_out_fraction": self.fraction, "seed": self.seed,
                "n_reports": self.n_reports, "n_held_out_reports": len(self.held_out_report_ids),
                "held_out_report_ids_sha256": hashlib.sha256(ids).hexdigest(),
                "n_train_sentences": len(self.train), "n_held_out_sentences": len(self.held_out)}


def split_corpus_by_report(corpus: str | Path, fraction: float, seed: int = REPORT_SPLIT_SEED) -> CorpusSplit:
    """Split a report corpus by report. A sentence written in both a training and a held-out report (e.g. "No
    acute cardiopulmonary abnormality.") counts as training text: the held-out side shares no sentence with it."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"held-out fraction must be in (0, 1), got {fraction}")
    corpus = Path(corpus)
    if corpus.suffix.lower() == ".txt":  # one sentence per line: every line is its own report
        units = [(f"line{i}", [line]) for i, line in enumerate(load_sentence_corpus(corpus))]
    else:
        units = [(r.report_id, split_sentences(r.text)) for r in load_reports(corpus)]
    train: dict[str, None] = {}
    held: dict[str, None] = {}
    held_ids = []
    for report_id, raw in units:
        out = is_held_out(report_id, fraction, seed)
        if out:
            held_ids.append(report_id)
        for sentence in raw:
            cleaned = _usable(sentence)
            if cleaned:
                (held if out else train).setdefault(cleaned, None)
    held_only = [s for s in held if s not in train]
    return CorpusSplit(list(train), held_only, len(units), held_ids, fraction, seed)


def labelled_corpus_part(
    corpus: str | Path, part: str, held_out_fraction: float, max_sentences: int | None = None, seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """labelled_sentences restricted to the training ("train") or held-out ("held_out") reports."""
    if part not in ("train", "held_out"):
        raise ValueError(f"part must be train or held_out, not {part!r}")
    split = split_corpus_by_report(corpus, held_out_fraction)
    return _labelled(split.train if part == "train" else split.held_out, max_sentences, seed)
