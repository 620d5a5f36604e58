"""One working session without Qt: the loaded images, the model engine, cached embeddings and sentence
banks, and what a user asks of them (score, heat-map, retrieve, search, score a folder).

The app's window is a view over this object and runs its operations in worker threads; the tests drive
it directly. Operations raise MedflipError with a sentence for a person when the input is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.imaging import Radiograph
from medflip_core.imaging.opening import LoadResult, open_images, same_image_keys
from medflip_core.imaging.reader_processes import ReaderProcesses
from medflip_core.inference.batch import Row, classify_files
from medflip_core.inference.heatmap import HeatOverlay, heat_overlay
from medflip_core.inference.image_ood import all_warnings, layout_features
from medflip_core.inference.ood import out_of_distribution
from medflip_core.inference.retrieval import ImageHit, SentenceBank, SentenceHits, order_search_hits

Progress = Callable[[int, int], None]


def load_paths(paths: Sequence[str | Path], progress: Progress | None = None,
               should_stop: Callable[[], bool] | None = None,
               on_images: Callable[[list[Radiograph]], None] | None = None,
               reader: ReaderProcesses | None = None) -> LoadResult:
    """Every image under the given files/folders, pixels decoded on demand into the bounded pixel cache,
    duplicates opened once (medflip_core.imaging.opening); unreadable ones become messages, never exceptions.
    `reader`: the files are read in its worker processes (the window's thread never waits on a decoder)."""
    return open_images(paths, progress, should_stop, on_images, reader=reader)


def check_prompts(labels: list[str], templates: list[str]) -> None:
    """Labels and templates a zero-shot score can be computed from, or a MedflipError saying what to fix."""
    if not labels:
        raise MedflipError("Type at least one label (one per line).")
    seen: set[str] = set()
    for label in labels:
        key = label.casefold()
        if key in seen:
            raise MedflipError(f"The label “{label}” is listed twice; each label once, please.")
        seen.add(key)
    for i, template in enumerate(templates):
        if "{label}" not in template:
            raise MedflipError(f"Template line {i + 1} (“{template}”) has no {{label}} placeholder.")


class Session:
    def __init__(self) -> None:
        self.images: list[Radiograph] = []
        self.engine: Any = None  # medflip_core.inference.engine.Engine once a model is loaded
        self._embeddings: dict[int, Any] = {}
        self._content_warnings: dict[int, list[str]] = {}  # tags + pixels + embedding, made with the embedding
        self._banks: dict[str, Any] = {}

    # --- images and model -------------------------------------------------------------------------------
    def add_images(self, images: Sequence[Radiograph]) -> tuple[list[int], list[int]]:
        """Append images not already open; returns (indices of the new ones, indices of ones already open)."""
        known = {key: i for i, rg in enumerate(self.images) for key in same_image_keys(rg)}
        new, repeated = [], []
        for rg in images:
            keys = same_image_keys(rg)  # the same file through a link, or the same SOP Instance UID
            index = next((known[k] for k in keys if k in known), None)
            if index is not None:
                repeated.append(index)
                continue
            self.images.append(rg)
            known.update(dict.fromkeys(keys, len(self.images) - 1))
            new.append(len(self.images) - 1)
        return new, repeated

    def set_engine(self, engine: Any) -> None:
        self.engine = engine
        self._embeddings.clear()
        self._content_warnings.clear()
        self._banks.clear()

    def _need(self, index: int | None = None) -> Any:
        if self.engine is None:
            raise MedflipError("Choose a model first (the Model picker in the tool bar).")
        if index is not None and not 0 <= index < len(self.images):
            raise MedflipError("Open an image first.")
        return self.engine

    def embedding(self, index: int) -> Any:
        self._need(index)
        cached = self._embeddings.get(index)
        if cached is None:  # decoded for this use only: a scan over many images keeps no pixels
            cached = self._embed(index, self.images[index].arrays(keep=False)[0])
        return cached

    def _embed(self, index: int, pixels: np.ndarray) -> Any:
        """Embed an image and, while its pixels are at hand, run the out-of-distribution checks on them. Kept
        only if the model is still the session's: a worker thread may finish after another model was chosen,
        whose results must never be this model's."""
        engine = self._need(index)
        embedding = engine.embed_images([pixels])
        warnings = all_warnings(self.images[index], pixels, embedding.embedding[0], engine.ood_reference,
                                layout_features(embedding.patch_tokens, embedding.grid))
        if self.engine is engine:
            self._embeddings[index] = embedding
            self._content_warnings[index] = warnings
        return embedding

    def _embed_in_workers(self, reader: ReaderProcesses) -> None:
        """Embeddings of the images not embedded yet whose pixels are not in memory, decoded by `reader` a few
        files ahead of the encoder. Raises the first file's ImageLoadError (a file gone since it was opened)."""
        self._need()
        far = [i for i, rg in enumerate(self.images) if i not in self._embeddings and not rg.is_decoded()]
        loaded = reader.load_images([self.images[i].path for i in far])
        try:
            for i, (_, rg) in zip(far, loaded, strict=True):
                if isinstance(rg, MedflipError):
                    raise rg
                pixels, _ = self.images[i].adopt(rg.arrays(), keep=False)  # checked: still the image opened
                self._embed(i, pixels)
        finally:
            loaded.close()

    def warnings(self, index: int) -> list[str]:
        """Why scores for this image may not be trustworthy (out of the model's distribution): its DICOM tags
        (inference.ood) and, once a model is loaded, its pixels and embedding (inference.image_ood; the image is
        embedded if it was not yet)."""
        if self.engine is None or not 0 <= index < len(self.images):
            return out_of_distribution(self.images[index].metadata)
        if index not in self._content_warnings:
            self.embedding(index)
        return list(self._content_warnings.get(index) or out_of_distribution(self.images[index].metadata))

    # --- operations ---------------------------------------------------------------------------------------
    def score(self, index: int, labels: list[str], templates: list[str]) -> dict[str, float]:
        check_prompts(labels, templates)
        engine = self._need(index)
        return engine.classify(self.embedding(index).embedding[0], labels, templates or None)

    def zero_shot(self, index: int, labels: list[str], templates: list[str], mode: str | None = None) -> Any:
        """medflip_core.inference.zeroshot.ZeroShotScores for one image. `mode` "independent" (findings, each present vs
        absent), "exclusive" (one class per image) or None / "automatic" (chosen from the labels; see
        zeroshot.choose_label_mode); the result names the mode. Without templates, or with the bundle's own written as
        templates (zeroshot.user_templates), the bundle's decision rule applies; the user's own templates get the
        plain rule (zeroshot.score_with_templates)."""
        from medflip_core.inference.label_specificity import alike_notes
        from medflip_core.inference.zeroshot import score_with_templates, user_templates

        check_prompts(labels, templates)
        engine = self._need(index)
        scores = score_with_templates(engine, self.embedding(index).embedding[0], labels, templates, mode)
        own = user_templates(templates, engine.bundle.manifest)
        scores = replace(scores, prompts=engine.prompt_texts(labels, own))  # what was averaged, for the screen
        if own is not None:  # the figure holds for the bundle's own prompts, not typed ones
            return scores
        return replace(scores, alike=alike_notes(engine, labels))

    @property
    def has_classifier(self) -> bool:
        return self.engine is not None and getattr(self.engine, "classifier", None) is not None

    def predict(self, index: int) -> Any:
        """The classifier's calibrated probabilities and decisions for one image (inference.engine.Prediction)."""
        from medflip_core.inference.engine import Prediction

        engine = self._need(index)
        clf = engine.require_classifier()
        emb = self.embedding(index)
        probs = clf.probabilities(emb.embedding)
        decided = clf.decisions(probs)[0]
        return Prediction(probabilities={c: float(p) for c, p in zip(clf.classes, probs[0], strict=True)},
                          decisions={c: bool(d) for c, d in zip(clf.classes, decided, strict=True)},
                          thresholds=clf.effective_thresholds(), multi_label=clf.multi_label,
                          embedding=emb.embedding[0], patch_tokens=emb.patch_tokens[0], rule=clf.rule_sentence())

    def heat_map(self, index: int, label: str, opacity: float, class_activation: bool = False) -> HeatOverlay:
        """Patch-text similarity of a label, or with `class_activation` the classifier's activation map of a
        class (patch tokens through the head)."""
        engine = self._need(index)
        tokens = self.embedding(index).patch_tokens[0]
        if class_activation:
            heat = engine.class_activation_map(tokens, label)
        else:
            heat = engine.similarity_map(tokens, label)
        return heat_overlay(heat, self.images[index].shape, engine.pre.image_size, opacity)

    def can_retrieve(self, corpus: str = "") -> bool:
        """Whether retrieval can run without the user choosing a corpus first."""
        if self.engine is None:
            return False
        return bool(corpus) or self.engine.bundle.manifest.get("sentence_bank") is not None

    def prepare_corpus(self, corpus: str, progress: Progress | None = None,
                       should_stop: Callable[[], bool] | None = None) -> SentenceBank | None:
        """Embed a user's report corpus with the loaded model, once, for retrieve(); `progress(done, total)`
        counts its sentences. None when stopped. A bank finished after another model was chosen is not kept."""
        engine = self._need()
        if corpus in self._banks:
            bank = self._banks[corpus]
            if progress is not None:
                progress(len(bank), len(bank))
            return bank
        bank = engine.bank_from_corpus(corpus, progress=progress, should_stop=should_stop)
        if bank is not None and self.engine is engine:
            self._banks[corpus] = bank
        return bank

    def retrieve(self, index: int, k: int, corpus: str = "") -> SentenceHits:
        """The k report sentences closest to the image: the model's bank, or a user corpus (embedded once),
        with the image's out-of-distribution warnings (the sentences of a leg film are no reading of it)."""
        engine = self._need(index)
        bank = None
        if corpus:
            if corpus not in self._banks:
                self._banks[corpus] = engine.bank_from_corpus(corpus)
            bank = self._banks[corpus]
        bank = engine.bank_or_refuse(bank)
        hits, spread = bank.nearest(self.embedding(index).embedding[0], k)
        return SentenceHits(hits, self.warnings(index), spread, len(bank))

    def search(self, query: str, reader: ReaderProcesses | None = None) -> list[ImageHit]:
        """Loaded images ranked by similarity to a text, each with its out-of-distribution warnings: the
        in-distribution ones first (see inference.retrieval.order_search_hits). `reader`: images whose pixels
        are not in memory are decoded in its worker processes."""
        engine = self._need()
        if not query.strip():
            raise MedflipError("Type what to search for, e.g. pleural effusion.")
        if not self.images:
            raise MedflipError("Open some images to search first.")
        if reader is not None:
            self._embed_in_workers(reader)
        embs = np.concatenate([self.embedding(i).embedding for i in range(len(self.images))])
        return order_search_hits([ImageHit(i, s, self.images[i].path.name, tuple(self.warnings(i)))
                                  for i, s in engine.rank_images(query, embs)])

    def score_folder(self, folder: str | Path, labels: list[str], templates: list[str] | None = None,
                     progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                     classifier: bool = False, mode: str | None = None,
                     reader: ReaderProcesses | None = None) -> list[Row]:
        """One row per image file under the folder (see medflip_core.inference.batch.classify_files); with `classifier`
        the model's own classes, calibrated, with decisions at its thresholds (labels are not used). `reader`:
        the files are decoded in its worker processes."""
        engine = self._need()
        if classifier:
            engine.require_classifier()
        else:
            check_prompts(labels, templates or [])
        rows = classify_files(engine, [folder], labels, templates or None, progress, should_stop, classifier, mode,
                              reader)
        if len(rows) == 1 and rows[0]["path"] == str(folder) and "error" in rows[0]:
            raise MedflipError(rows[0]["error"])  # nothing to score: say why instead of a one-row table
        return rows
