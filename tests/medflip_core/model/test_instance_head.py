"""The instance term's loss: it rewards codes that tell each film's two views from the batch's other films."""

from __future__ import annotations

import math

import pytest
import torch

from medflip_core.model.instance_head import InstanceHead, instance_loss, two_view_loss


def test_matching_views_score_low_and_unrelated_ones_at_chance():
    torch.manual_seed(0)
    codes = torch.nn.functional.normalize(torch.randn(16, 128), dim=-1)
    same = instance_loss(codes, codes, temperature=0.1)
    shuffled = instance_loss(codes, codes[torch.randperm(16)], temperature=0.1)
    flat = instance_loss(torch.ones(16, 128) / math.sqrt(128), torch.ones(16, 128) / math.sqrt(128), 0.1)
    assert float(same) < 0.05  # each film's view finds its twin among 16
    assert float(flat) == pytest.approx(math.log(16), rel=1e-5)  # codes that say nothing: chance
    assert float(shuffled) > float(flat)  # twins that point at other films: worse than chance
    with pytest.raises(ValueError, match="two views of at least two films"):
        instance_loss(codes[:1], codes[:1], 0.1)


def test_two_view_loss_reads_the_class_token_of_a_doubled_batch():
    torch.manual_seed(0)
    head = InstanceHead(width=32)
    hidden = torch.randn(6, 5, 32)  # 3 films x 2 views, class token + 4 patch tokens
    doubled = torch.cat([hidden[:3], hidden[:3]])
    patches_differ = doubled.clone()
    patches_differ[:, 1:] = torch.randn(6, 4, 32)  # only the patch tokens change: the loss must not move
    loss = two_view_loss(head, doubled, 0.1)
    same = float(two_view_loss(head, patches_differ, 0.1).detach())
    assert torch.isfinite(loss) and float(loss.detach()) == pytest.approx(same)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())
