"""ONNX Runtime inference over a model bundle. No torch: this is what the GUI and the CLI run.

Image in -> (embedding, patch tokens); text in -> embedding; on top of those: zero-shot label scores,
sentence retrieval and patch-text similarity maps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.bundles.bundle import IMAGE_ONNX, TEXT_ONNX, TOKENIZER_DIR, Bundle, load_bundle
from medflip_core.errors import MedflipError
from medflip_core.imaging import Radiograph
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess_batch
from medflip_core.inference.gpu_runtime import CPU_EP, cpu_session_kwargs, gpu_failed, inference_device

log = logging.getLogger(__name__)

MAX_CORPUS_SENTENCES = 20000  # a user corpus's sentences embedded for retrieval (the first ones)
CORPUS_STEP = 64  # sentences embedded between two progress reports


@dataclass(frozen=True)
class Prediction:
    """A classifier bundle's answer for one image: calibrated probabilities and decisions under its one rule
    (inference.classifier.decide), in the classifier's own class order."""

    probabilities: dict[str, float]
    decisions: dict[str, bool]
    thresholds: dict[str, float]
    multi_label: bool
    embedding: np.ndarray  # (D,)
    patch_tokens: np.ndarray  # (L, D), for class-activation maps
    rule: str = ""  # the decision rule in one sentence (inference.classifier.decision_rule_sentence)

    @property
    def top(self) -> str:
        """Exclusive classes: the decided class (the rule's, so a table's top and decision never disagree);
        multi-label: the most probable label."""
        decided = [c for c, d in self.decisions.items() if d]
        if not self.multi_label and len(decided) == 1:
            return decided[0]
        return max(self.probabilities, key=self.probabilities.get)


@dataclass(frozen=True)
class ImageEmbedding:
    embedding: np.ndarray  # (B, D) L2-normalised
    patch_tokens: np.ndarray  # (B, L, D) L2-normalised, patch order row-major
    grid: tuple[int, int]


class Engine:
    def __init__(
        self, bundle: Bundle | str | Path, threads: int | None = None, prefer_gpu: bool = True, verify: bool = True
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, verify=verify)
        self._threads = threads
        self._session_options = self._new_options()
        self.device = inference_device(prefer_gpu)
        self.providers = list(self.device.providers)
        self._image = self._session(IMAGE_ONNX)
        self._text = None  # loaded on first use: scoring with a classifier head needs no text encoder
        self.tokenizer = None
        self.pre = PreprocessConfig.from_dict(self.bundle.preprocess)
        model = self.bundle.manifest["model"]
        side = int(model["image_size"]) // int(model["patch_size"])
        self.grid = (side, side)
        self._text_cache: dict[str, np.ndarray] = {}
        self.classifier = None
        if self.bundle.is_classifier:
            from medflip_core.inference.classifier import load_classifier

            self.classifier = load_classifier(self.bundle.path, self.bundle.manifest["classifier"])

    def _session(self, name: str):
        import onnxruntime as ort

        path = str(self.bundle.file(name))
        reason = None
        if self.device.on_gpu:
            try:
                session = ort.InferenceSession(path, **self.device.session_kwargs(self._session_options))
                if session.get_providers()[:1] == [self.device.providers[0]]:
                    return session
                reason = ("ONNX Runtime did not start its CUDA provider for this model (the session runs on "
                          f"{session.get_providers()[0]})")
            except Exception as exc:  # a GPU that cannot take the model (memory, driver), or a broken model
                reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        options = self._new_options() if reason else self._session_options  # the GPU's options hold its devices
        try:
            session = ort.InferenceSession(path, **cpu_session_kwargs(options))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise MedflipError(f"cannot load the ONNX encoder {name} of {self.bundle.name}: {exc}") from exc
        if reason:  # the CPU took what the GPU did not: the GPU is at fault, not the model
            self._gpu_failed(reason, options)
        return session

    def _new_options(self):
        """Fresh session options: `threads` intra-op threads if given, errors only in onnxruntime's log."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if self._threads:
            opts.intra_op_num_threads = self._threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return opts

    def _gpu_failed(self, reason: str, options) -> None:
        """From now on this engine (and this process: gpu_failed) runs on the CPU; an encoder already on the GPU
        moves too, so that the device named is the device used."""
        import onnxruntime as ort

        self.device = gpu_failed(reason)
        self.providers = [CPU_EP]
        self._session_options = options
        image = getattr(self, "_image", None)
        if image is not None and image.get_providers()[0] != CPU_EP:
            self._image = ort.InferenceSession(str(self.bundle.file(IMAGE_ONNX)), **cpu_session_kwargs(options))

    @property
    def has_text(self) -> bool:
        """Zero-shot and retrieval need the text encoder (CLIP bundles, and classifiers made by a probe)."""
        return self.bundle.file(TEXT_ONNX).is_file()

    def _text_session(self):
        if self._text is None:
            if not self.has_text:
                raise MedflipError(f"model {self.bundle.name} has no text encoder: it scores only its own classes "
                                   f"({', '.join(self.classifier.classes) if self.classifier else 'none'}).")
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.bundle.file(f"{TOKENIZER_DIR}/tokenizer.json")))
            tokenizer.enable_truncation(max_length=int(self.bundle.manifest["max_text_tokens"]))
            pad_id = tokenizer.token_to_id("[PAD]") or 0
            tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
            self._text = self._session(TEXT_ONNX)
            self.tokenizer = tokenizer
        return self._text

    @property
    def logit_scale(self) -> float:
        return self.bundle.logit_scale

    def embed_pixels(self, pixels: np.ndarray) -> ImageEmbedding:
        """Embed preprocessed model input (B, 1, S, S) float32."""
        emb, tokens = self._image.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        return ImageEmbedding(embedding=emb, patch_tokens=tokens, grid=self.grid)

    def embed_images(self, images: Sequence[Radiograph | np.ndarray], batch: int = 16) -> ImageEmbedding:
        embs, toks = [], []
        for start in range(0, len(images), batch):
            out = self.embed_pixels(preprocess_batch(images[start : start + batch], self.pre))
            embs.append(out.embedding)
            toks.append(out.patch_tokens)
        return ImageEmbedding(np.concatenate(embs), np.concatenate(toks), self.grid)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(T, D) L2-normalised text embeddings; repeated texts are embedded once.

        Each text is its own batch: the int8 text encoder quantises activations with one scale per tensor, so
        in a padded batch a text's embedding would depend on its batch-mates (cosine 0.990-0.997 to the same
        text embedded alone, measured on IU sentences). Alone, an embedding is a function of the text only:
        the sentence bank, prompts and typed queries then agree.
        """
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        session = self._text_session() if missing else None
        for text in missing:
            enc = self.tokenizer.encode(text)
            ids = np.array([enc.ids], dtype=np.int64)
            mask = np.array([enc.attention_mask], dtype=np.int64)
            (emb,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            self._text_cache[text] = emb[0]
        if not texts:
            return np.zeros((0, self.bundle.embed_dim), dtype=np.float32)
        return np.stack([self._text_cache[t] for t in texts])

    # --- what the GUI and the CLI ask for -------------------------------------------------------------

    @property
    def shipped_prompts(self):
        """medflip_core.labeler.prompts.ShippedPrompts the bundle's decision rule was chosen with, or None."""
        from medflip_core.labeler.prompts import ShippedPrompts

        return ShippedPrompts.from_manifest(self.bundle.manifest)

    def prompt_plan(self, labels: list[str], templates: list[str] | None = None, mode: str = "ensemble"):
        """The texts standing for each label: the user's templates when given; otherwise the prompts this
        bundle's decision rule was chosen with (its manifest's zero_shot_prompts), else the shipped set."""
        from medflip_core.labeler.prompts import build_prompts

        if templates is None and mode == "ensemble":
            shipped = self.shipped_prompts
            plan = shipped.plan(labels) if shipped is not None else None
            if plan is not None:
                return plan
        return build_prompts(labels, templates, mode=mode)

    def prompt_texts(self, labels: list[str], templates: list[str] | None = None) -> dict[str, list[str]]:
        plan = self.prompt_plan(labels, templates)
        return {label: plan.texts_for(label) for label in plan.labels}

    def class_embeddings(self, labels: list[str], templates: list[str] | None = None) -> np.ndarray:
        from medflip_core.inference.zeroshot import class_embeddings

        plan = self.prompt_plan(labels, templates)
        return class_embeddings(plan, self.embed_texts(plan.texts))

    def classify_embeddings(
        self, image_emb: np.ndarray, labels: list[str], templates: list[str] | None = None
    ) -> np.ndarray:
        """(N, C) zero-shot probabilities (softmax over the labels), with the bundle's decision rule (its
        manifest's zero_shot_rule; plain softmax for bundles without one) unless custom templates are given."""
        from medflip_core.inference.zeroshot import EXCLUSIVE, score_labels, zero_shot_scores

        if templates is None:
            return score_labels(self, np.atleast_2d(image_emb), labels, kind=EXCLUSIVE).probs
        return zero_shot_scores(image_emb, self.class_embeddings(labels, templates), self.logit_scale)

    def zero_shot(self, image_emb: np.ndarray, labels: list[str], kind: str | None = None):
        """inference.zeroshot.ZeroShotScores: probabilities with the bundle's decision rule and their kind —
        EXCLUSIVE (sum to 1 across the labels) or INDEPENDENT (one P(present) per label), `kind` None choosing
        from the labels (zeroshot.choose_label_mode). `.explanation()` is the sentence to show on screen."""
        from medflip_core.inference.zeroshot import score_labels

        return score_labels(self, np.atleast_2d(image_emb), labels, kind=kind)

    def classify(
        self, image_emb: np.ndarray, labels: list[str], templates: list[str] | None = None
    ) -> dict[str, float]:
        """Zero-shot probabilities of one image embedding over the labels (they sum to 1)."""
        probs = self.classify_embeddings(np.atleast_2d(image_emb), labels, templates)[0]
        return {label: float(p) for label, p in zip(labels, probs, strict=True)}

    def similarity_map(self, patch_tokens: np.ndarray, text: str) -> np.ndarray:
        """(rows, cols) cosine of each patch token with a text (a label is expanded to its prompts)."""
        from medflip_core.inference.zeroshot import patch_similarity_map

        text_emb = self.class_embeddings([text])[0]
        return patch_similarity_map(patch_tokens, text_emb, self.grid)

    # --- classifier bundles ------------------------------------------------------------------------------

    def require_classifier(self):
        if self.classifier is None:
            raise MedflipError(f"model {self.bundle.name} is not a classifier: score it with labels (zero-shot), "
                               "or fine-tune a classifier from it with `medflip finetune`.")
        return self.classifier

    def predict_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, K) calibrated probabilities of the classifier's classes."""
        return self.require_classifier().probabilities(embeddings)

    def predict(self, images: Sequence[Radiograph | np.ndarray]) -> list[Prediction]:
        """The classifier's calibrated probabilities and decisions under its rule, one per image."""
        clf = self.require_classifier()
        out = self.embed_images(images)
        probs = clf.probabilities(out.embedding)
        decisions = clf.decisions(probs)
        thresholds = clf.effective_thresholds()
        return [Prediction(probabilities={c: float(p) for c, p in zip(clf.classes, row, strict=True)},
                           decisions={c: bool(d) for c, d in zip(clf.classes, dec, strict=True)},
                           thresholds=thresholds, multi_label=clf.multi_label, embedding=emb, patch_tokens=tok,
                           rule=clf.rule_sentence())
                for row, dec, emb, tok in zip(probs, decisions, out.embedding, out.patch_tokens, strict=True)]

    def class_activation_map(self, patch_tokens: np.ndarray, class_name: str) -> np.ndarray:
        """(rows, cols) contribution of every patch to a class's logit, through the classifier head."""
        clf = self.require_classifier()
        if class_name not in clf.classes:
            raise MedflipError(f"{class_name!r} is not a class of {self.bundle.name} ({', '.join(clf.classes)})")
        return clf.activation_map(patch_tokens, clf.classes.index(class_name), self.grid)

    @property
    def ood_reference(self):
        """The bundle's chest-film reference for the out-of-distribution check (inference.image_ood), or None."""
        if not hasattr(self, "_ood_reference"):
            from medflip_core.inference.image_ood import bundle_reference

            self._ood_reference = bundle_reference(self.bundle)
        return self._ood_reference

    @property
    def sentence_bank(self):
        """The bundle's sentence bank (text read from the shipped corpus), or None."""
        if not hasattr(self, "_bank"):
            from medflip_core.inference.retrieval import load_bundle_bank

            self._bank = load_bundle_bank(self.bundle)
        return self._bank

    def bank_from_corpus(self, path: str | Path, max_sentences: int = MAX_CORPUS_SENTENCES,
                         progress: Callable[[int, int], None] | None = None,
                         should_stop: Callable[[], bool] | None = None):
        """Embed the sentences of a user's corpus (Open-i XML folder or tgz, CSV, TXT) into a bank: its first
        `max_sentences` (the bank's `available` says how many it had). `progress(done, total)` follows the
        sentences embedded (the IU archive's 20,000 take about a minute on a laptop CPU); None when `should_stop`
        said so before the end."""
        from medflip_core.inference.retrieval import SentenceBank
        from medflip_core.reports import load_sentence_corpus

        sentences = load_sentence_corpus(path)
        kept = sentences[:max_sentences]
        parts = [np.zeros((0, self.bundle.embed_dim), dtype=np.float32)]
        for start in range(0, len(kept), CORPUS_STEP):
            if should_stop is not None and should_stop():
                return None
            if progress is not None:
                progress(start, len(kept))
            parts.append(self.embed_texts(kept[start:start + CORPUS_STEP]))
        if progress is not None:
            progress(len(kept), len(kept))
        return SentenceBank(kept, np.concatenate(parts), available=len(sentences))

    def retrieve(self, image_emb: np.ndarray, k: int = 5, bank=None):
        return self.bank_or_refuse(bank).top_k(np.atleast_2d(image_emb), k)[0]

    def bank_or_refuse(self, bank=None):
        """`bank`, else the model's own sentence bank; a model without one is a sentence, not an error."""
        bank = bank if bank is not None else self.sentence_bank
        if bank is None:
            raise MedflipError(f"model {self.bundle.name} has no sentence bank; choose a report corpus.")
        return bank

    def rank_images(self, query: str, image_embeddings: np.ndarray) -> list[tuple[int, float]]:
        """Text-to-image search: loaded images ranked by similarity to a query (prompts ensembled)."""
        from medflip_core.inference.retrieval import text_to_image

        return text_to_image(self.class_embeddings([query])[0], image_embeddings)


def reembed_bundle_bank(bundle_dir: str | Path) -> dict:
    """Re-embed a bundle's sentence bank with the bundle's own ONNX text encoder (the one that embeds queries
    and prompts at run time, int8 if quantised), so bank and queries come from the same encoder. Rewrites the
    bank file and the manifest's bank entry; the caller refreshes the file list (bundle.refresh_file_list)."""
    import os

    from medflip_core.bundles.bundle import BANK_NPZ, MANIFEST, write_manifest
    from medflip_core.reports import load_sentence_corpus
    from medflip_core.resources import resources_dir

    bundle_dir = Path(bundle_dir)
    engine = Engine(bundle_dir, verify=False)
    info = engine.bundle.manifest.get("sentence_bank")
    if not info:
        raise MedflipError(f"{bundle_dir} has no sentence bank")
    corpus = Path(info["corpus"])
    corpus = corpus if corpus.is_absolute() else resources_dir() / corpus
    sentences = load_sentence_corpus(corpus)
    with np.load(bundle_dir / BANK_NPZ, allow_pickle=False) as data:
        indices, labels = data["indices"], data["labels"]
    emb = engine.embed_texts([sentences[int(i)] for i in indices])
    tmp = bundle_dir / f".{BANK_NPZ}.tmp.npz"
    np.savez_compressed(tmp, embeddings=emb.astype(np.float16), indices=indices, labels=labels)
    os.replace(tmp, bundle_dir / BANK_NPZ)
    manifest = json.loads((bundle_dir / MANIFEST).read_text(encoding="utf-8"))
    manifest["sentence_bank"] = {**info, "embedded_with": "the bundle's ONNX text encoder (as queries are)"}
    write_manifest(bundle_dir, manifest)
    return manifest["sentence_bank"]
