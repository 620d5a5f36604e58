"""Run plumbing: epochs in optimizer steps under gradient accumulation; skipped steps; non-finite losses."""

from __future__ import annotations

import pytest
import torch

from medflip_core.events import EventWriter
from trainer.config import TrainConfig
from trainer.run_state import NonFiniteLoss, Progress, RunState
from trainer.runtime import Dist


@pytest.mark.parametrize(("grad_accum", "expected_steps"), [(1, 20), (2, 10), (4, 5)])
def test_an_epoch_is_fewer_optimizer_steps_with_gradient_accumulation(grad_accum, expected_steps):
    cfg = TrainConfig(images=["x"], corpus="y", epochs=1.0, grad_accum=grad_accum)
    progress = Progress(cfg, batches_per_epoch=20)
    assert progress.steps_per_epoch == expected_steps and progress.total_steps == expected_steps
    assert Progress(TrainConfig(images=["x"], corpus="y", epochs=2.5, grad_accum=grad_accum), 20).total_steps == \
        round(2.5 * expected_steps)


def _run(tmp_path, events_file):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return RunState(tmp_path, 2, Dist(), EventWriter(str(events_file)), model, opt)


def test_non_finite_loss_stops_with_the_step(tmp_path):
    run = _run(tmp_path, tmp_path / "e.jsonl")
    run.check_loss(torch.tensor(1.5), 3)
    with pytest.raises(NonFiniteLoss, match="at step 4"):
        run.check_loss(torch.tensor(float("nan")), 4)
    with pytest.raises(NonFiniteLoss, match="at step 5"):
        run.check_loss(None, 5)


def test_skipped_steps_are_events_and_too_many_in_a_row_stop(tmp_path):
    from medflip_core.events import SkippedStepEvent, event_from_record, parse_event_line

    run = _run(tmp_path, tmp_path / "e.jsonl")
    run.note_skipped(False, 1, "off")
    run.note_skipped(True, 2, "off")  # a good step resets the count
    run.note_skipped(False, 3, "off")
    run.note_skipped(False, 4, "off")
    with pytest.raises(NonFiniteLoss, match="gradients"):
        run.note_skipped(False, 5, "off")
    run.events.close()
    events = [event_from_record(parse_event_line(x)) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert all(isinstance(e, SkippedStepEvent) for e in events)
    assert [e.step for e in events] == [1, 3, 4, 5] and events[-1].in_a_row == 3


def test_rank_flags_live_where_the_backend_can_reduce_them():
    # NCCL all-reduces CUDA tensors only: the stop/skip flags must go to the GPU there, to the CPU for gloo
    import torch

    from trainer.runtime import collective_device

    assert collective_device("gloo").type == "cpu"
    if torch.cuda.is_available():
        assert collective_device("nccl").type == "cuda"
