from __future__ import annotations

import json

import pytest
import torch

from trainer.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint_into,
    save_checkpoint,
)


def _model_and_optimizer(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, opt


def _train_steps(model, opt, n: int) -> None:
    for i in range(n):
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(i))
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_roundtrip_restores_weights_optimizer_and_continues_identically(tmp_path):
    model, opt = _model_and_optimizer(0)
    _train_steps(model, opt, 3)
    save_checkpoint(tmp_path, 3, model.state_dict(), opt, {"elapsed_s": 1.5})
    _train_steps(model, opt, 2)
    expected = [p.detach().clone() for p in model.parameters()]

    fresh, fresh_opt = _model_and_optimizer(99)
    state = load_checkpoint_into(latest_checkpoint(tmp_path), fresh, fresh_opt)
    assert state["step"] == 3 and state["elapsed_s"] == 1.5
    _train_steps(fresh, fresh_opt, 2)
    for a, b in zip(expected, fresh.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_keeps_last_n_and_best(tmp_path):
    model, opt = _model_and_optimizer(0)
    for step, auc in [(1, 0.6), (2, 0.9), (3, 0.7), (4, 0.65), (5, 0.5)]:
        save_checkpoint(tmp_path, step, model.state_dict(), opt, {"metrics": {"val_auc": auc}},
                        keep_last=2, best_metric="val_auc")
    assert [c.step for c in list_checkpoints(tmp_path)] == [2, 4, 5]


def test_partial_and_corrupt_checkpoints_are_ignored(tmp_path):
    model, opt = _model_and_optimizer(0)
    save_checkpoint(tmp_path, 1, model.state_dict(), opt, {})
    root = tmp_path / "checkpoints"
    # what a kill -9 during a write leaves behind
    (root / ".step-00000002.partial").mkdir()
    (root / ".step-00000002.partial" / "model.safetensors").write_bytes(b"half")
    broken = root / "step-00000003"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"x")
    (broken / "state.json").write_text("{not json")
    assert latest_checkpoint(tmp_path).step == 1


def test_state_is_plain_json_and_weights_are_safetensors(tmp_path):
    model, opt = _model_and_optimizer(0)
    _train_steps(model, opt, 1)
    path = save_checkpoint(tmp_path, 1, model.state_dict(), opt, {"note": "x"})
    state = json.loads((path / "state.json").read_text())
    assert state["note"] == "x" and state["step"] == 1
    from safetensors.torch import load_file

    assert set(load_file(str(path / "model.safetensors"))) == set(model.state_dict())


def test_write_failure_leaves_previous_checkpoint(tmp_path, monkeypatch):
    model, opt = _model_and_optimizer(0)
    save_checkpoint(tmp_path, 1, model.state_dict(), opt, {})

    import trainer.checkpoint as ck

    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", full_disk)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 2, model.state_dict(), opt, {})
    assert [c.step for c in list_checkpoints(tmp_path)] == [1]
    assert not list((tmp_path / "checkpoints").glob(".*partial"))


def test_replacing_a_step_never_leaves_it_missing(tmp_path, monkeypatch):
    """Saving the same step twice swaps folders by rename; a crash between the renames is recovered."""
    import os

    import trainer.checkpoint as ck

    model, opt = _model_and_optimizer(0)
    save_checkpoint(tmp_path, 5, model.state_dict(), opt, {"version": 1})
    real_replace = os.replace
    calls = []

    def crash_after_moving_the_old_aside(src, dst):
        calls.append((str(src), str(dst)))
        real_replace(src, dst)
        if str(dst).endswith(".old"):
            raise KeyboardInterrupt("killed between the two renames")

    monkeypatch.setattr(ck.os, "replace", crash_after_moving_the_old_aside)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 5, model.state_dict(), opt, {"version": 2})
    monkeypatch.setattr(ck.os, "replace", real_replace)
    ckpt = latest_checkpoint(tmp_path)  # the old folder is put back
    assert ckpt.step == 5 and ckpt.state["version"] == 1
    save_checkpoint(tmp_path, 5, model.state_dict(), opt, {"version": 3})
    assert latest_checkpoint(tmp_path).state["version"] == 3
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000005"]


def test_best_metric_survives_a_resume(tmp_path):
    from medflip_core.events import EventWriter
    from trainer.run_state import RunState
    from trainer.runtime import Dist

    model, opt = _model_and_optimizer(0)
    run = RunState(tmp_path, 3, Dist(), EventWriter(enabled=False), model, opt, best_metric="val_auc")
    assert run.improves({"val_auc": 0.8})
    run.save(10, {}, {"val_auc": 0.8})
    assert not run.improves({"val_auc": 0.7})
    run.save(20, {}, {"val_auc": 0.7})
    resumed = RunState(tmp_path, 3, Dist(), EventWriter(enabled=False), model, opt, best_metric="val_auc")
    assert resumed.resume() == 20 and resumed.best_value == 0.8
    assert not resumed.improves({"val_auc": 0.75}) and resumed.improves({"val_auc": 0.85})
