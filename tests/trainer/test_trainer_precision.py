"""Mixed precision: the dtype chosen per device, bf16 autocast, and the float16 gradient scaler on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.precision import Precision, choose_precision, clip_gradients


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


def _grads_of(model) -> list[torch.Tensor]:
    return [q.grad.clone() for q in model.parameters()]


@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 1e6, float("inf")])
def test_clip_gradients_gives_torchs_bits_and_leaves_gradients_under_the_limit_untouched(max_norm):
    """The same norm and gradients as clip_grad_norm_, whether the limit clips (1e-3, 0.5) or not (1e6, inf)."""
    ours, theirs = _model(), _model()
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    for model in (ours, theirs):
        model(x).pow(2).sum().backward()
    unclipped = _grads_of(ours)
    norm = clip_gradients(ours.parameters(), max_norm)
    reference = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
    assert norm == float(reference)
    assert all(torch.equal(a, b) for a, b in zip(_grads_of(ours), _grads_of(theirs), strict=True))
    clipped = norm > max_norm
    assert clipped == (max_norm < 1.0)  # the test's own premise: the gradients' norm is between 0.5 and 1e6
    assert all(torch.equal(a, b) for a, b in zip(_grads_of(ours), unclipped, strict=True)) is not clipped


def test_clip_gradients_reports_a_non_finite_norm_and_skips_parameters_without_gradients():
    model = _model()
    model(torch.randn(4, 8)).sum().backward()
    model[2].bias.grad = None  # a parameter this step did not reach
    model[0].weight.grad[0, 0] = float("nan")
    assert math.isnan(clip_gradients(model.parameters(), 1.0))
    assert torch.isnan(model[0].weight.grad[0, 0])
    assert clip_gradients([], 1.0) == 0.0
