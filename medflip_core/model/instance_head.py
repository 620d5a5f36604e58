"""Instance discrimination between two masked views of each film: training-only, beside the MIM decoder.

Why: the MedFLIP loss links unpaired images and reports through their labels, so every film of one label is pulled
towards the same sentences, and nothing in the loss keeps what tells two pneumonia films apart (issue 32: bacterial
vs viral stays at the raw pixels' level while every labelled finding gains). With `--instance-weight`, each film of
a step is encoded twice under two independent random masks (one encoder pass over the doubled batch: the kept
tokens of both views), and a small head on the class token must say which view of the batch came from the same
film: an InfoNCE loss, symmetric, as in SimCLR / SLIP, with the masks as the only augmentation between the views
(masked siamese networks use the same idea). The head sits on the tower's class token before the projection, so the
shared image-text space is never asked to push apart two films the text calls the same; the head is not exported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INSTANCE_FILE = "instance_head.safetensors"  # in a checkpoint folder, beside model.safetensors


class InstanceHead(nn.Module):
    """Class token (encoder width) -> a small normalised code: Linear, GELU, Linear (SimCLR's projection MLP)."""

    def __init__(self, width: int, hidden: int = 512, out: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, out))

    def forward(self, cls_token: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(cls_token.float()), dim=-1)


def instance_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE over the batch: row i of `first` must pick row i of `second` among all of them, and the other way
    round (mean of the two cross-entropies). Inputs are L2-normalised codes of the same films in the same order."""
    if first.shape != second.shape or first.shape[0] < 2:
        raise ValueError(f"two views of at least two films are needed, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}")
    logits = first @ second.T / temperature
    target = torch.arange(first.shape[0], device=first.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def two_view_loss(head: InstanceHead, hidden: torch.Tensor, temperature: float) -> torch.Tensor:
    """The loss of a doubled batch whose second half is the first half's films under other masks; `hidden` is the
    tower's final states (ImageOutput.hidden), the class token first."""
    codes = head(hidden[:, 0])
    n = codes.shape[0] // 2
    return instance_loss(codes[:n], codes[n:2 * n], temperature)


__all__ = ["INSTANCE_FILE", "InstanceHead", "instance_loss", "two_view_loss"]
