"""Process-level concerns: device, distributed setup, cancel signals, learning-rate schedule."""

from __future__ import annotations

import hashlib
import math
import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from medflip_core.events import EventWriter


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from medflip_core.errors import MedflipError

            raise MedflipError("--device cuda was asked for, but no CUDA GPU is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def init_distributed(device: torch.device) -> Dist:
    """Join the torchrun group when launched by torchrun (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ["LOCAL_RANK"]))


def start_process(device_name: str, seed: int, events: EventWriter) -> tuple[torch.device, Dist]:
    """What every job does first: pick the device, join torchrun's group if any, let only rank 0 write
    events, and seed torch (the same seed on every rank, so replicas start identical)."""
    device = pick_device(device_name)
    ddp = init_distributed(device)
    events.enabled = events.enabled and ddp.is_main
    torch.manual_seed(seed)
    return device, ddp


class CancelFlag:
    """SIGTERM/SIGINT ask the loop to finish its step, checkpoint and exit cleanly."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name


def lr_factor(progress: float, step: int, warmup_steps: int, schedule: str) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to 0 as progress goes 0 -> 1 (or constant)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(max(progress, 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def tty_progress(step: int, total: int | None, loss: float, samples_per_s: float, eta_s: float | None) -> None:
    """A one-line progress bar on stderr, only when a person is watching a terminal."""
    import sys

    if not sys.stderr.isatty():
        return
    width = 30
    done = int(width * step / total) if total else 0
    bar = "#" * done + "-" * (width - done) if total else ""
    eta = f" ETA {eta_s / 60:5.1f} min" if eta_s is not None else ""
    of = f"/{total}" if total else ""
    print(f"\r[{bar}] step {step}{of} loss {loss:.4f} {samples_per_s:6.1f} img/s{eta}", end="", file=sys.stderr,
          flush=True)


def collective_device(backend: str) -> torch.device:
    """Where a small tensor must live to be all-reduced: NCCL reduces CUDA tensors only, gloo CPU tensors."""
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _flags(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, device=collective_device(dist.get_backend()))


def agree(fraction: float, cancel: bool, ddp: Dist) -> tuple[float, bool]:
    """All ranks must take the same learning rate and stop at the same step, or DDP deadlocks."""
    if not ddp.enabled:
        return fraction, cancel
    t = _flags([fraction, float(cancel)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0]), bool(t[1] > 0)


def any_rank(flag: bool, ddp: Dist) -> bool:
    """True on every rank when the flag is True on any rank (so all ranks stop or skip together)."""
    if not ddp.enabled:
        return flag
    t = _flags([float(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0] > 0)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every tensor of the model (names and bytes): replicas that stayed in step have the same."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_digests(model: torch.nn.Module, ddp: Dist) -> list[str]:
    """Every rank's weights digest (a collective: all ranks call it at the same point)."""
    digest = weights_digest(model)
    if not ddp.enabled:
        return [digest]
    gathered: list[str | None] = [None] * ddp.world_size
    dist.all_gather_object(gathered, digest)
    return [g or "" for g in gathered]
