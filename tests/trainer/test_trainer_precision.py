"""Mixed precision: the dtype chosen per device, bf16 autocast, and the float16 gradient scaler on CPU."""

from __future__ import annotations

import pytest
import torch

from trainer.precision import Precision, choose_precision


@pytest.mark.parametrize(("amp", "device", "bf16", "expected"), [
    ("auto", "cuda", True, "bf16"),
    ("auto", "cuda", False, "fp16"),
    ("auto", "cpu", True, "off"),
    ("on", "cuda", False, "fp16"),
    ("on", "cpu", True, "bf16"),
    ("off", "cuda", True, "off"),
    ("fp16", "cpu", True, "fp16"),
    ("bf16", "cuda", False, "bf16"),
])
def test_choose_precision(amp, device, bf16, expected):
    assert choose_precision(amp, device, bf16) == expected


def test_unknown_amp_is_refused():
    with pytest.raises(ValueError, match="amp must be one of"):
        choose_precision("fp8", "cpu", True)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def test_bf16_autocast_runs_the_matmuls_in_bf16_and_trains():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    prec = Precision("bf16", torch.device("cpu"))
    assert prec.scaler is None
    x = torch.randn(16, 8)
    before = [p.detach().clone() for p in model.parameters()]
    with prec.autocast():
        out = model(x)
    assert out.dtype == torch.bfloat16
    prec.backward(out.float().pow(2).mean())
    outcome = prec.step(opt, model.parameters(), 1.0)
    assert outcome.finite and all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fp16_scaler_keeps_tiny_gradients_that_plain_fp16_loses():
    """A loss whose float16 gradients underflow: unscaled backward gives zeros, the scaler keeps them."""
    x = torch.full((4, 8), 1e-4)
    plain, scaled = _model(), _model()
    with torch.autocast("cpu", dtype=torch.float16):
        (plain(x).sum() * 1e-4).backward()
    prec = Precision("fp16", torch.device("cpu"))
    assert prec.scaler is not None
    with prec.autocast():
        loss = scaled(x).sum() * 1e-4
    prec.backward(loss)
    prec.scaler.unscale_(torch.optim.SGD(scaled.parameters(), lr=0.0))
    assert plain[0].weight.grad.abs().max() == 0  # underflow without scaling
    assert scaled[0].weight.grad.abs().max() > 0


def test_fp16_step_with_non_finite_gradients_is_skipped_and_the_scale_backs_off():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    prec = Precision("fp16", torch.device("cpu"))
    scale = prec.scaler.get_scale()
    before = [p.detach().clone() for p in model.parameters()]
    with prec.autocast():
        loss = model(torch.randn(4, 8)).sum()
    prec.backward(loss)
    model[0].weight.grad[0, 0] = float("inf")
    outcome = prec.step(opt, model.parameters(), 1.0)
    assert not outcome.finite
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert prec.scaler.get_scale() < scale


def test_float32_step_skips_on_a_rank_disagreement():
    """Another rank saw NaN gradients: this rank skips too (the agreement function says so)."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    prec = Precision("off", torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    prec.backward(model(torch.randn(4, 8)).sum())
    outcome = prec.step(opt, model.parameters(), 1.0, all_finite=lambda _local: False)
    assert not outcome.finite
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
