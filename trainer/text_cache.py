"""Frozen text layers computed once per sentence (`text_train=partial` or `frozen`).

In partial mode only the last MiniLM layers train; the embeddings and the layers below them never
change, so their output for a sentence is the same at every step. In frozen mode that holds for the whole
encoder, and a step only projects the cached states. The cache keeps those states per sentence (least
recently used first out, bounded in bytes) and the step runs only what trains.
Padding positions are filled with zeros: the attention mask hides them from every later layer.
A pool that fits the budget is computed up front (`warm`); otherwise misses are computed one sentence
at a time, so a cached state never depends on the batch it first came in (resumed runs stay bit-identical).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

import torch

from medflip_core.model.text_tower import TextTower


class FrozenTextCache:
    def __init__(self, tower: TextTower, max_mb: float) -> None:
        self.tower = tower
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._states: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def _store(self, key: Hashable, states: torch.Tensor) -> None:
        size = states.numel() * states.element_size()
        if size > self.max_bytes:
            return
        while self.bytes + size > self.max_bytes and self._states:
            _, old = self._states.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
        self._states[key] = states
        self.bytes += size

    def warm(self, keys: Sequence[Hashable], tokens: dict[str, torch.Tensor], chunk: int = 64) -> bool:
        """Compute a whole sentence pool up front when it fits the budget (then nothing is ever evicted or
        recomputed, and the chunks are the same in a resumed run). Returns whether it did."""
        device = next(self.tower.parameters()).device
        ids, mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
        lengths = mask.sum(dim=1)
        hidden = int(self.tower.encoder.config.hidden_size)
        if int(lengths.sum()) * hidden * 4 > self.max_bytes - self.bytes:
            return False
        for start in range(0, len(keys), chunk):
            rows = slice(start, start + chunk)
            width = int(lengths[rows].max())
            states = self.tower.frozen_states(ids[rows, :width], mask[rows, :width])
            for j, key in enumerate(keys[rows]):
                self._store(key, states[j, : int(lengths[start + j])].clone())
        return True

    def states(self, keys: Sequence[Hashable], tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, H) frozen states for a tokenised batch whose rows are the sentences `keys`."""
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        missing = [i for i, k in enumerate(keys) if k not in self._states]
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        fresh: dict[int, torch.Tensor] = {}
        for i in missing:
            # one sentence at a time, unpadded: its states are then a function of the sentence alone (not of
            # the batch it first came in), so a resumed run computes exactly the bits the killed run cached
            n = int(lengths[i])
            fresh[i] = self.tower.frozen_states(ids[i : i + 1, :n], mask[i : i + 1, :n])[0]
            self._store(keys[i], fresh[i])
        out = None
        for i, key in enumerate(keys):
            row = fresh.get(i)
            if row is None:
                row = self._states[key]
                self._states.move_to_end(key)
            if out is None:
                out = row.new_zeros((len(keys), ids.shape[1], row.shape[-1]))
            out[i, : row.shape[0]] = row
        return out


__all__ = ["FrozenTextCache"]
