"""Training data: image records -> model input tensors; a labelled sentence pool sampled per step.

Every draw is a pure function of (seed, step, rank), so a resumed run sees exactly the batches the
killed run would have seen, and distributed ranks see disjoint images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from medflip_core.data.image_folder import ImageRecord
from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.preprocess import PreprocessConfig, preprocess

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


class ImageBatches:
    """Epoch-wise shuffled image batches for one rank; loads and preprocesses on demand."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        pre: PreprocessConfig,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(records) < batch_size * world_size:
            raise MedflipError(
                f"only {len(records)} training images for batch size {batch_size} x {world_size} process(es)"
            )
        self.records = list(records)
        self.pre = pre
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.skipped = SkipCounter()
        self._bad: set[int] = set()

    @property
    def steps_per_epoch(self) -> int:
        return len(self.records) // (self.batch_size * self.world_size)

    def indices_for_step(self, step: int) -> tuple[int, np.ndarray]:
        """(epoch, record indices of this rank's batch) for a global step."""
        epoch, within = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.records))
        per_step = self.batch_size * self.world_size
        chunk = order[within * per_step : (within + 1) * per_step]
        return epoch, chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def load(self, index: int) -> np.ndarray | None:
        if index in self._bad:
            return None
        try:
            return preprocess(load_image(self.records[index].path), self.pre)
        except MedflipError as exc:
            self._bad.add(index)
            self.skipped.add(str(exc))
            log.warning("skipping unreadable image: %s", exc)
            return None

    def batch(self, step: int) -> tuple[int, torch.Tensor, torch.Tensor, list[int]]:
        """(epoch, pixels (B,1,S,S), labels (B,14), record indices); unreadable images are replaced by others."""
        epoch, idx = self.indices_for_step(step)
        pixels, labels, used = [], [], []
        spare = np.random.default_rng([self.seed, step, self.rank, 7]).permutation(len(self.records))
        candidates = [*idx.tolist(), *spare.tolist()]
        for i in candidates:
            if len(pixels) == self.batch_size:
                break
            arr = self.load(int(i))
            if arr is not None:
                pixels.append(arr)
                labels.append(self.records[int(i)].labels)
                used.append(int(i))
        if len(pixels) < self.batch_size:
            raise MedflipError("too few readable images to fill a batch")
        labels_t = torch.from_numpy(np.stack(labels).astype(np.float32))
        return epoch, torch.from_numpy(np.stack(pixels)), labels_t, used


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

    def _take(self, picks: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        idx = torch.from_numpy(picks.astype(np.int64))
        tokens = {k: v[idx] for k, v in self.tokens.items()}
        # trim padding columns no sentence in this batch uses
        width = int(tokens["attention_mask"].sum(dim=1).max())
        tokens = {k: v[:, :width] for k, v in tokens.items()}
        return tokens, torch.from_numpy(self.labels[picks])

    def matched_batch(self, step: int, image_labels: np.ndarray, seed: int,
                      rank: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
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

    def batch(self, step: int, size: int, seed: int, rank: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        rng = np.random.default_rng([seed, step, rank, 11])
        n_focus = int(round(size * self.focus_share))
        picks = np.concatenate(
            [rng.choice(self.focus, n_focus, replace=len(self.focus) < n_focus),
             rng.choice(len(self.sentences), size - n_focus, replace=len(self.sentences) < size - n_focus)]
        ).astype(np.int64)
        return self._take(picks)
