"""Dropout for the trainable text layers on the CPU, with a quarter of the random-number cost.

Profiling the two trainable MiniLM layers on this CPU: their six dropout masks per step (attention
probabilities, attention output and feed-forward output of each layer) took 17 % of the text layers' time,
nearly all of it drawing random numbers: torch's CPU `bernoulli_` makes one generator draw per element.
One 31-bit draw of `random_()` holds two independent uniform 15-bit fields, so here each mask element costs
half a draw and two integer operations. A field below round(p * 2**15) drops its element: the drop rate is p
to within 2**-16 (0.1 gives 0.100006), and kept values are scaled by 1 / (1 - that rate), so the expected
output is the input, as with torch's dropout. The draws come from torch's CPU generator like every other
torch draw, so a seed fixes the masks and a resumed run (which restores the generator) draws the same ones.
Other devices use torch's own dropout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FIELD_BITS = 15
_FIELD = (1 << FIELD_BITS) - 1


def drop_rate(p: float) -> float:
    """The rate actually used for a requested rate p (a multiple of 2**-15)."""
    return round(p * (1 << FIELD_BITS)) / (1 << FIELD_BITS)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """Boolean (shape) mask, True with probability 1 - drop_rate(p), independently per element."""
    n = math.prod(int(size) for size in shape)
    half = (n + 1) // 2
    draws = torch.empty(half, dtype=torch.int32).random_()  # uniform on [0, 2**31): two 15-bit fields each
    threshold = round(p * (1 << FIELD_BITS))
    keep = torch.empty(2 * half, dtype=torch.bool)
    torch.ge(draws & _FIELD, threshold, out=keep[:half])
    torch.ge(draws >> 16, threshold, out=keep[half:])
    return keep[:n].view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout of a float tensor; the identity when not training or p is 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    rate = drop_rate(p)
    if x.device.type != "cpu" or rate in (0.0, 1.0):  # p = 1 rounds to 1: torch's dropout gives the zeros
        return F.dropout(x, p, training=True)
    scale = 1.0 / (1.0 - rate)
    # scaled in the input's precision once per element (a bf16 scale factor alone would round 1/0.9 to 1.109)
    return torch.where(keep_mask(x.shape, p), x * scale, x.new_zeros(()))


__all__ = ["FIELD_BITS", "drop_rate", "dropout", "keep_mask"]
