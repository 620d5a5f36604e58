"""Per-step draws for training: image batches (records -> model input tensors) and the labelled sentence pool.

Every draw is a pure function of (seed, step, rank), so a resumed run sees exactly the batches the
killed run would have seen, and distributed ranks see disjoint images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from medflip_core.data.image_folder import ImageRecord
from medflip_core.errors import MedflipError
from medflip_core.imaging.augment import augment_radiograph, augment_rng
from medflip_core.imaging.decode_pool import DECODE_IN, DecodePool, decode_for_training
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from trainer.image_cache import DecodedImageCache

log = logging.getLogger(__name__)


@dataclass
class SkipCounter:
    """Unreadable images are skipped and counted, not fatal."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(message)


class SentenceBatch(NamedTuple):
    tokens: dict[str, torch.Tensor]
    labels: torch.Tensor
    ids: list[int]  # sentence indices in the pool (keys of the frozen-text cache)


class ImageBatch(NamedTuple):
    epoch: int
    pixels: torch.Tensor  # (B, 1, S, S)
    labels: torch.Tensor  # (B, 14)
    used: list[int]  # record indices


class ImageBatches:
    """Epoch-wise shuffled image batches for one rank; loads and preprocesses on demand.

    With `workers` > 0, a batch's images are decoded in that many threads (PIL and the resampling release
    the GIL), and `prefetch(step)` starts the next batch while the current step computes. With
    `decode_in="processes"` each of those threads hands its file to one of `workers` worker processes
    (medflip_core/imaging/decode_pool.py: JPEG 2000 holds the GIL; a crashing decoder skips a file, not the run).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        pre: PreprocessConfig,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        sampler=None,  # medflip_core.data.sampling.MixedSampler: per-source weights + class balance
        augment=None,  # medflip_core.imaging.augment.AugmentConfig: train-only augmentation before preprocessing
        cache: DecodedImageCache | None = None,  # decoded images kept across epochs / evaluations
        cache_name: str = "train",  # this loader's share of the cache's keys (one cache can serve several)
        decode_in: str = "threads",  # or "processes" (needs workers > 0)
    ) -> None:
        if len(records) < batch_size * world_size:
            fits = len(records) // world_size
            advice = (f"set the batch size to {fits} or less (--batch-size; Batch size in the Training tab), or add "
                      "images" if fits >= 2 else "add images")
            raise MedflipError(f"only {len(records)} training images (after the validation patients are held out) "
                               f"for batch size {batch_size} x {world_size} process(es): {advice}")
        self.records = list(records)
        self.pre = pre
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.skipped = SkipCounter()
        self._bad: set[int] = set()
        if decode_in not in DECODE_IN:
            raise MedflipError(f"decode_in must be threads or processes, not {decode_in!r}")
        if decode_in == "processes" and workers < 1:
            raise MedflipError("decoding in processes needs at least one worker (--num-workers 1 or more)")
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="decode") if workers > 0 else None
        self._decoder = DecodePool(workers) if decode_in == "processes" else None
        # Prefetch runs _build, which itself waits on the decode pool: a separate thread, or a one-worker pool
        # deadlocks (the prefetch occupies the only decode worker while waiting for it).
        self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="prefetch") if workers > 0 else None
        self._ahead: dict[int, Future] = {}
        self.sampler = sampler
        self.augment = augment
        self.cache = cache
        self.cache_name = cache_name

    @property
    def steps_per_epoch(self) -> int:
        return len(self.records) // (self.batch_size * self.world_size)

    def indices_for_step(self, step: int) -> tuple[int, np.ndarray]:
        """(epoch, record indices of this rank's batch) for a global step."""
        epoch, within = divmod(step, self.steps_per_epoch)
        if self.sampler is not None:
            return epoch, self.sampler.indices_for_step(step, self.rank)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.records))
        per_step = self.batch_size * self.world_size
        chunk = order[within * per_step : (within + 1) * per_step]
        return epoch, chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def load(self, index: int, step: int = 0) -> np.ndarray | None:
        if index in self._bad:
            return None
        try:
            source = self._source(index)
            if self.augment is None:
                return source  # already the model input
            # keyed by (seed, step, rank, index): a resumed run sees the same pixels
            image = augment_radiograph(source, augment_rng(self.seed, step, self.rank, index), self.augment)
            return preprocess(image, self.pre)
        except MedflipError as exc:
            self._bad.add(index)
            self.skipped.add(str(exc))
            log.warning("skipping unreadable image: %s", exc)
            return None

    def _source(self, index: int) -> np.ndarray:
        """The decoded image as this loader starts from it (the cache's value; trainer/image_cache.py): the model
        input without augmentation, the reduced grey image augmentation draws from with it."""
        key = (self.cache_name, index)
        if self.cache is not None and (cached := self.cache.get(key)) is not None:
            return cached
        path, for_augmentation = self.records[index].path, self.augment is not None
        if self._decoder is not None:
            source = self._decoder.decode(path, self.pre, for_augmentation)
        else:
            source = decode_for_training(path, self.pre, for_augmentation)
        return self.cache.put(key, source) if self.cache is not None else source

    def cache_stats(self) -> dict:
        """{cache_name: the cache's figures} for a done event, {} without a cache."""
        return {self.cache_name: self.cache.stats()} if self.cache is not None else {}

    def load_many(self, indices: Sequence[int], step: int = 0) -> list[np.ndarray | None]:
        """`load` of each index, in order (in the loader's workers when it has them)."""
        if self._pool is None:
            return [self.load(int(i), step) for i in indices]
        return list(self._pool.map(lambda i: self.load(int(i), step), indices))

    def prefetch(self, step: int) -> None:
        """Start loading the batch of `step` in the background (no effect without workers)."""
        if self._prefetcher is not None and step not in self._ahead:
            self._ahead[step] = self._prefetcher.submit(self._build, step)

    def batch(self, step: int) -> ImageBatch:
        """Pixels, labels and record indices of a step; unreadable images are replaced by others."""
        ahead = self._ahead.pop(step, None)
        for old in [s for s in self._ahead if s < step]:
            self._ahead.pop(old).cancel()
        return ahead.result() if ahead is not None else self._build(step)

    def _build(self, step: int) -> ImageBatch:
        epoch, idx = self.indices_for_step(step)
        pixels, labels, used = [], [], []
        spare = np.random.default_rng([self.seed, step, self.rank, 7]).permutation(len(self.records))
        candidates = [*idx.tolist(), *spare.tolist()]
        while len(pixels) < self.batch_size and candidates:
            chunk = [int(i) for i in candidates[: self.batch_size - len(pixels)]]
            candidates = candidates[len(chunk):]
            for i, arr in zip(chunk, self.load_many(chunk, step), strict=True):
                if arr is not None:
                    pixels.append(arr)
                    labels.append(self.records[i].labels)
                    used.append(i)
        if len(pixels) < self.batch_size:
            raise MedflipError("too few readable images to fill a batch")
        labels_t = torch.from_numpy(np.stack(labels).astype(np.float32))
        return ImageBatch(epoch, torch.from_numpy(np.stack(pixels)), labels_t, used)

    def close(self) -> None:
        for pool in (self._prefetcher, self._pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        if self._decoder is not None:
            self._decoder.close()


class SentencePool:
    """Labelled sentences, tokenised once; batches drawn so that the image classes' labels are represented."""

    def __init__(
        self,
        sentences: Sequence[str],
        labels: np.ndarray,
        tokenize,
        focus_labels: np.ndarray | None = None,
        focus_share: float = 0.8,
    ) -> None:
        if len(sentences) == 0:
            raise MedflipError("the report corpus gave no labelled sentences to train on")
        self.sentences = list(sentences)
        self.labels = labels.astype(np.float32)
        self.tokens = tokenize(self.sentences)
        # Sentences naming a label the images carry; drawing mostly from them keeps soft targets informative.
        if focus_labels is not None and focus_labels.any():
            hit = (self.labels[:, focus_labels > 0] > 0).any(axis=1)
            self.focus = np.flatnonzero(hit)
        else:
            self.focus = np.arange(len(self.sentences))
        self.focus_share = focus_share if len(self.focus) else 0.0
        self._matches: dict[bytes, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.sentences)

    def _take(self, picks: np.ndarray) -> SentenceBatch:
        idx = torch.from_numpy(picks.astype(np.int64))
        tokens = {k: v[idx] for k, v in self.tokens.items()}
        # trim padding columns no sentence in this batch uses
        width = int(tokens["attention_mask"].sum(dim=1).max())
        tokens = {k: v[:, :width] for k, v in tokens.items()}
        return SentenceBatch(tokens, torch.from_numpy(self.labels[picks]), [int(i) for i in picks])

    def matched_batch(self, step: int, image_labels: np.ndarray, seed: int,
                      rank: int = 0) -> SentenceBatch:
        """One sentence per image, drawn among sentences sharing a positive label with it: pseudo-pairs for
        losses that need a diagonal (CLIP InfoNCE) when images and reports are unpaired."""
        rng = np.random.default_rng([seed, step, rank, 13])
        positive = self.labels > 0
        picks = []
        for row in image_labels:
            key = row.tobytes()
            if key not in self._matches:
                self._matches[key] = np.flatnonzero((positive & (row > 0)).any(axis=1))
            pool = self._matches[key]
            picks.append(rng.choice(pool) if len(pool) else rng.integers(len(self.sentences)))
        return self._take(np.array(picks))

    def batch(self, step: int, size: int, seed: int, rank: int = 0) -> SentenceBatch:
        rng = np.random.default_rng([seed, step, rank, 11])
        n_focus = int(round(size * self.focus_share))
        picks = np.concatenate(
            [rng.choice(self.focus, n_focus, replace=len(self.focus) < n_focus),
             rng.choice(len(self.sentences), size - n_focus, replace=len(self.sentences) < size - n_focus)]
        ).astype(np.int64)
        return self._take(picks)
