"""The training optimizer: fused AdamW where the device has the kernel, with the update of plain AdamW."""

from __future__ import annotations

import torch

from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.optim import adamw


def test_fused_adamw_makes_the_update_of_the_per_tensor_adamw():
    torch.manual_seed(0)
    tower = build_model(ModelConfig(image_size=64)).image_tower.eval()  # no dropout: both runs see the same graph
    start = {n: p.detach().clone() for n, p in tower.named_parameters()}
    pixels = torch.randn(4, 1, 64, 64)
    target = torch.randn(4, 256)  # the embedding is L2-normalised: its square sum would have no gradient
    results = []
    # eps well above float noise: parameters with no true gradient (the key bias) then barely move in both
    groups = lambda ps: [{"params": ps, "weight_decay": 0.05}]  # noqa: E731
    for make in (lambda ps: adamw(groups(ps), torch.device("cpu"), lr=1e-3, eps=1e-4),
                 lambda ps: torch.optim.AdamW(groups(ps), lr=1e-3, eps=1e-4, foreach=False)):
        with torch.no_grad():
            for n, p in tower.named_parameters():
                p.copy_(start[n])
        opt = make(list(tower.parameters()))
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            (tower(pixels).embedding * target).sum().backward()
            opt.step()
        results.append({n: p.detach().clone() for n, p in tower.named_parameters()})
    assert adamw([{"params": [torch.zeros(1, requires_grad=True)]}], torch.device("cpu")).defaults["fused"]
    moved = 0
    for name, fused in results[0].items():
        torch.testing.assert_close(fused, results[1][name], atol=1e-6, rtol=1e-5, msg=name)
        moved += int(not torch.equal(fused, start[name]))
    assert moved > len(start) // 2  # the steps really changed the weights
