"""The optimizer training uses (pre-training, fine-tuning, and the throughput benchmark that times it)."""

from __future__ import annotations

import torch


def adamw(param_groups: list[dict], device: torch.device, **options) -> torch.optim.AdamW:
    """AdamW with the fused kernel where the device has one (CPU and CUDA): one pass over all parameters
    instead of a dozen elementwise ops per tensor (on this 2-core CPU 8.5 vs 42 ms per step for the 9 M
    trainable parameters of pre-training). Same update rule; `medflip bench throughput` times it."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(param_groups, fused=fused or None, **options)
