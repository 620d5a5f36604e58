"""The text layers' CPU dropout: the rate asked for, inverted scaling, seeded, two independent fields per draw."""

from __future__ import annotations

import math

import pytest
import torch

from medflip_core.model.fast_dropout import FIELD_BITS, drop_rate, dropout, keep_mask


def test_the_rate_is_the_requested_one_to_within_two_to_the_minus_16():
    for p in (0.1, 0.05, 0.3, 0.5):
        assert abs(drop_rate(p) - p) <= 2.0 ** -(FIELD_BITS + 1)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_elements_drop_at_the_rate_and_kept_ones_are_scaled(p):
    torch.manual_seed(0)
    x = torch.ones(400_001)  # odd: the last draw's second field is cut off
    out = dropout(x, p, training=True)
    dropped = float((out == 0).float().mean())
    sd = math.sqrt(p * (1 - p) / x.numel())
    assert abs(dropped - drop_rate(p)) < 5 * sd
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - drop_rate(p))))
    assert abs(float(out.mean()) - 1.0) < 5 * sd / (1 - p)  # inverted dropout keeps the expectation


def test_both_fields_of_a_draw_are_used_and_independent():
    torch.manual_seed(1)
    n = 200_000
    keep = keep_mask((n,), 0.5)
    first, second = keep[: n // 2].float(), keep[n // 2 :].float()
    assert abs(float(first.mean()) - 0.5) < 0.01 and abs(float(second.mean()) - 0.5) < 0.01
    correlation = float(((first - first.mean()) * (second - second.mean())).mean() / (first.std() * second.std()))
    assert abs(correlation) < 0.02


def test_seeded_masks_repeat_and_differ_between_draws():
    x = torch.randn(3, 5, 7)
    torch.manual_seed(7)
    a, b = dropout(x, 0.1, True), dropout(x, 0.1, True)
    torch.manual_seed(7)
    assert torch.equal(dropout(x, 0.1, True), a)
    assert not torch.equal(a, b)
    assert a.shape == x.shape


def test_identity_when_not_training_and_gradient_is_the_scaled_mask():
    x = torch.randn(64, 32, requires_grad=True)
    assert dropout(x, 0.1, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    torch.manual_seed(3)
    out = dropout(x, 0.2, training=True)
    out.sum().backward()
    expected = (out != 0).float() / (1 - drop_rate(0.2))
    assert torch.equal(x.grad, expected)
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
    with pytest.raises(ValueError, match="probability"):
        dropout(x, -0.1, training=True)


def test_bfloat16_kept_values_are_the_input_scaled_in_its_own_precision():
    torch.manual_seed(4)
    x = torch.randn(10_000).to(torch.bfloat16)
    out = dropout(x, 0.1, training=True)
    kept = out != 0
    assert out.dtype == torch.bfloat16
    assert torch.equal(out[kept], (x * (1 / (1 - drop_rate(0.1))))[kept])
