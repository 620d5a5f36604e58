"""Which training images go into a batch when images come from several sources (no torch, no Qt).

The scheme: a source is drawn for every slot of the batch with probability proportional to its weight
(`source_weights`, e.g. Kermany 0.5, NIH 0.5: a small adult source is not drowned by a large pediatric
one); within a source, a class is drawn uniformly among the classes it has, then an image of that class
uniformly. The trainer balances on `balance_key`: "no finding" vs "finding" (Kermany NORMAL as often as
PNEUMONIA, NIH no-finding images as often as images with any finding), not on every finding, which would
draw NIH's 3 hernia images as often as its 372 normal ones. Sampling is with replacement and a pure
function of (seed, step, rank): a resumed run draws exactly the batches the killed run would have drawn,
and ranks draw independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def balance_key(labels: np.ndarray) -> str:
    """The class a label-space vector is balanced as: "finding" if any finding is positive, else "no finding"."""
    from medflip_core.labeler.labels import LABEL_INDEX

    findings = np.delete(np.asarray(labels), LABEL_INDEX["No Finding"])
    return "finding" if (findings > 0).any() else "no finding"


@dataclass(frozen=True)
class SourceIndex:
    """One source: its name and the record indices (into the combined list) of each of its classes."""

    name: str
    classes: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return int(sum(len(v) for v in self.classes.values()))


def build_sources(sources: Sequence[str], classes: Sequence[str]) -> list[SourceIndex]:
    """Group records by (source, class): `sources[i]` and `classes[i]` belong to record i."""
    out: dict[str, dict[str, list[int]]] = {}
    for i, (s, c) in enumerate(zip(sources, classes, strict=True)):
        out.setdefault(s, {}).setdefault(c, []).append(i)
    return [SourceIndex(s, {c: np.array(idx, dtype=np.int64) for c, idx in sorted(by_class.items())})
            for s, by_class in sorted(out.items())]


class MixedSampler:
    """Batches over several sources with per-source weights and class balancing within each source."""

    def __init__(self, sources: Sequence[SourceIndex], batch_size: int, seed: int,
                 weights: Mapping[str, float] | None = None, balance_classes: bool = True) -> None:
        if not sources:
            raise ValueError("no training sources")
        names = [s.name for s in sources]
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"source weights name unknown sources {unknown}; sources are {names}")
        w = np.array([float(weights.get(n, 1.0)) for n in names])
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("source weights must be non-negative and not all zero")
        self.sources = list(sources)
        self.p_source = w / w.sum()
        self.batch_size = batch_size
        self.seed = seed
        self.balance_classes = balance_classes

    def describe(self) -> dict:
        """The scheme as data (for the run's config and the model card)."""
        return {"sampling": "per-source weights, then " + ("a uniform class" if self.balance_classes else
                                                            "a uniform image") + " within the source",
                "source_probability": {s.name: round(float(p), 4) for s, p in zip(self.sources, self.p_source,
                                                                                   strict=True)},
                "images_per_source": {s.name: s.size for s in self.sources}}

    def indices_for_step(self, step: int, rank: int = 0) -> np.ndarray:
        """Record indices of this rank's batch at a global step."""
        rng = np.random.default_rng([self.seed, step, rank, 0x5A])
        picks = np.empty(self.batch_size, dtype=np.int64)
        chosen = rng.choice(len(self.sources), self.batch_size, p=self.p_source)
        for k, si in enumerate(chosen):
            source = self.sources[si]
            if self.balance_classes:
                members = list(source.classes.values())[int(rng.integers(len(source.classes)))]
            else:
                members = np.concatenate(list(source.classes.values()))
            picks[k] = members[int(rng.integers(len(members)))]
        return picks
