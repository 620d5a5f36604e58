"""Sentence retrieval over a bank of embedded report sentences, and text-to-image ranking."""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medflip_core.bundles.bundle import Bundle
from medflip_core.errors import MedflipError
from medflip_core.inference.zeroshot import l2_normalise


@dataclass(frozen=True)
class Hit:
    index: int
    sentence: str
    score: float


@dataclass(frozen=True)
class SentenceHits:
    """The sentences closest to one image, with the reasons the image is out of the model's distribution
    (medflip_core.inference.ood): for such an image the sentences are the bank's nearest, not a reading of it.
    Iterates, indexes and counts as its hits."""

    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)
    bank_sd: float | None = None  # this image's cosine over every sentence of the bank: its standard deviation
    bank_size: int = 0

    def closeness(self) -> str:
        """How far apart the sentences shown are, against how this image's similarity varies over the whole bank:
        a GUI walk read "Right upper lobe…" and "Left lower lobe…" a few thousandths apart as two findings."""
        if len(self.hits) < 2 or not self.bank_sd:
            return ""
        spread = self.hits[0].score - self.hits[-1].score
        sds = spread / self.bank_sd
        text = (f"These {len(self.hits)} lie within {spread:.3f} of each other, {sds:.1f} standard deviations of this "
                f"image's similarity over the {self.bank_size:,} sentences")
        if sds < 1.0:
            text += (": their order is nearly a tie, so what they disagree on (side, lobe, size) says nothing about "
                     "this image")
        return text + "."

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Hit:
        return self.hits[i]


@dataclass(frozen=True)
class ImageHit:
    """One image found by a text search: its index among the loaded images, cosine, file name, and why its
    score may not apply (out of distribution; empty when none)."""

    index: int
    score: float
    name: str
    warnings: tuple[str, ...] = ()

    @property
    def out_of_distribution(self) -> bool:
        return bool(self.warnings)


def order_search_hits(hits: Sequence[ImageHit]) -> list[ImageHit]:
    """In-distribution images first, best first, then the out-of-distribution ones, best first.

    A cosine between a text and a film the model was never trained on (a leg, a dog, a lateral view) says
    nothing about the finding, so ranking such films among the chests would put noise above real matches;
    they are kept (the flag comes from metadata and can be wrong) but listed after every in-distribution one.
    Ties keep the given order."""
    return sorted(hits, key=lambda h: (h.out_of_distribution, -h.score))


class SentenceBank:
    def __init__(self, sentences: list[str], embeddings: np.ndarray, labels: np.ndarray | None = None,
                 available: int | None = None) -> None:
        if len(sentences) != len(embeddings):
            raise MedflipError(f"sentence bank: {len(sentences)} sentences but {len(embeddings)} embeddings")
        self.sentences = list(sentences)
        self.available = len(self.sentences) if available is None else available  # the corpus's, when cut
        self.embeddings = l2_normalise(np.asarray(embeddings, dtype=np.float32))
        self.labels = None if labels is None else np.asarray(labels)

    def __len__(self) -> int:
        return len(self.sentences)

    def scores(self, image_emb: np.ndarray) -> np.ndarray:
        """(N, S) cosine similarities."""
        return l2_normalise(np.atleast_2d(image_emb)) @ self.embeddings.T

    def top_k(self, image_emb: np.ndarray, k: int) -> list[list[Hit]]:
        """For each image, the k best sentences, best first (ties: lower index first)."""
        return [self._best(row, k) for row in self.scores(image_emb)]

    def nearest(self, image_emb: np.ndarray, k: int) -> tuple[list[Hit], float]:
        """One image's k best sentences, and the standard deviation of its cosine over the whole bank (what
        SentenceHits.closeness weighs their spread against), from one pass over the bank."""
        row = self.scores(image_emb)[0]
        return self._best(row, k), float(row.std())

    def _best(self, row: np.ndarray, k: int) -> list[Hit]:
        order = np.lexsort((np.arange(len(row)), -row))[:min(k, len(self.sentences))]
        return [Hit(int(i), self.sentences[i], float(row[i])) for i in order]

    def save(self, path: str | Path) -> None:
        """path.npz (embeddings, labels) + path.json (sentences); no pickles."""
        path = Path(path)
        arrays = {"embeddings": self.embeddings}
        if self.labels is not None:
            arrays["labels"] = self.labels
        np.savez_compressed(path.with_suffix(".npz"), **arrays)
        path.with_suffix(".json").write_text(json.dumps(self.sentences), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> SentenceBank:
        path = Path(path)
        try:
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
                emb = data["embeddings"]
                labels = data.get("labels")
            sentences = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            raise MedflipError(f"cannot read the sentence bank {path}: {exc}") from exc
        return cls(sentences, emb, labels)


def text_to_image(query_emb: np.ndarray, image_embs: np.ndarray, k: int | None = None) -> list[tuple[int, float]]:
    """Images ranked by cosine to a text embedding, best first."""
    scores = l2_normalise(np.atleast_2d(image_embs)) @ l2_normalise(query_emb).reshape(-1)
    order = np.lexsort((np.arange(len(scores)), -scores))
    if k is not None:
        order = order[:k]
    return [(int(i), float(scores[i])) for i in order]


def load_bundle_bank(bundle: Bundle) -> SentenceBank | None:
    """A bundle's sentence bank: embeddings from the bundle, sentences re-read from the corpus it names."""
    from medflip_core.bundles.bundle import BANK_NPZ, sha256_file
    from medflip_core.reports import load_sentence_corpus
    from medflip_core.resources import resources_dir

    info = bundle.manifest.get("sentence_bank")
    if not info or not bundle.file(BANK_NPZ).is_file():
        return None
    corpus = resources_dir() / info["corpus"]
    if not corpus.is_file() or sha256_file(corpus) != info["corpus_sha256"]:
        raise MedflipError(f"the sentence bank of {bundle.name} needs the corpus {info['corpus']}, which is "
                           "missing or differs from the one it was built from.")
    sentences = load_sentence_corpus(corpus)
    try:
        with np.load(bundle.file(BANK_NPZ), allow_pickle=False) as data:
            emb = data["embeddings"].astype(np.float32)
            indices = data["indices"]
            labels = data["labels"]
        return SentenceBank([sentences[int(i)] for i in indices], emb, labels)
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, zlib.error) as exc:  # deleted or damaged
        # since the bundle was opened
        raise MedflipError(f"the sentence bank of {bundle.name} ({BANK_NPZ}) could not be read: {exc}. The model "
                           "folder was changed or removed; choose the model again, or a report corpus for "
                           "retrieval.") from exc
