"""Training throughput at several mask ratios, measured in one run so the ratios are comparable.

Two figures per ratio: the image tower alone (forward + backward of the ViT on masked tokens) and
the whole MedFLIP step (both towers, loss with the SVD term, optimizer step).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch

from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.image_tower import mask_for_batch
from medflip_core.model.losses import SVD_POWER_ITERS, compute_loss

REAL_SENTENCES = [
    "The heart is normal in size.",
    "There is a small left pleural effusion.",
    "Patchy right lower lobe airspace disease concerning for pneumonia.",
    "No pneumothorax or pleural effusion.",
    "The lungs are clear.",
    "Mild cardiomegaly with pulmonary vascular congestion.",
    "Left basilar atelectasis.",
    "Sternotomy wires are intact.",
]


def _time(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _interleaved(fn_a, fn_b, rounds: int) -> tuple[float, float]:
    """Median seconds of fn_a and fn_b timed alternately, so drift of a shared machine hits both alike."""
    a, b = [], []
    for _ in range(rounds):
        for fn, out in ((fn_a, a), (fn_b, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def measure(ratios: list[float], batch: int, image_size: int, vision: str, warmup: int, repeats: int,
            threads: int | None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(vision=vision, image_size=image_size))
    model.text_tower.set_trainable("partial")
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    img_opt = torch.optim.AdamW(model.image_tower.parameters(), lr=1e-5)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 1, image_size, image_size, generator=gen)
    texts = [REAL_SENTENCES[i % len(REAL_SENTENCES)] for i in range(batch)]
    tokens = model.text_tower.tokenize(texts)
    img_labels = torch.zeros(batch, 14)
    img_labels[: batch // 2, 0] = 1
    img_labels[batch // 2 :, 7] = 1
    txt_labels = img_labels.flip(0)
    rows = []
    for ratio in ratios:
        rng = np.random.default_rng(1)
        num_patches = model.image_tower.num_patches

        def tower_step() -> None:
            keep = mask_for_batch(batch, num_patches, ratio, rng)  # noqa: B023 - measured in this iteration
            out = model.image_tower(pixels, keep)
            loss = out.embedding.pow(2).sum() + out.tokens.pow(2).mean()
            img_opt.zero_grad(set_to_none=True)
            loss.backward()
            img_opt.step()

        def full_step(svd_iters: int | None = SVD_POWER_ITERS) -> None:
            keep = mask_for_batch(batch, num_patches, ratio, rng)  # noqa: B023
            img, txt = model(pixels, tokens["input_ids"], tokens["attention_mask"], keep)
            result = compute_loss("medflip", img, txt, img_labels, txt_labels, model.logit_scale,
                                  svd_iters=svd_iters)
            opt.zero_grad(set_to_none=True)
            result.total.backward()
            opt.step()

        tower_s = _time(tower_step, warmup, repeats)
        full_s = _time(full_step, warmup, repeats)
        row = {"mask_ratio": ratio, "tower_samples_per_s": batch / tower_s,
               "step_samples_per_s": batch / full_s, "tower_s": tower_s, "step_s": full_s}
        if ratio == max(ratios):  # power iteration vs the full SVD for sigma_1, timed alternately
            power_s, exact_s = _interleaved(full_step, lambda: full_step(None), max(3, 2 * repeats))
            row["step_power_svd_samples_per_s"] = batch / power_s
            row["step_full_svd_samples_per_s"] = batch / exact_s
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["tower_speedup"] = row["tower_samples_per_s"] / base["tower_samples_per_s"]
        row["step_speedup"] = row["step_samples_per_s"] / base["step_samples_per_s"]
    return {"batch": batch, "image_size": image_size, "vision": vision, "threads": torch.get_num_threads(),
            "device": "cpu", "machine": platform.machine(), "processor": platform.processor(), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench throughput", description=__doc__)
    parser.add_argument("--ratios", default="0,0.5,0.75")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--vision", default="vit_tiny_patch16_224")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ratios = [float(r) for r in args.ratios.split(",")]
    if ratios[0] != 0.0:
        ratios = [0.0, *ratios]
    result = measure(ratios, args.batch, args.image_size, args.vision, args.warmup, args.repeats, args.threads)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"training throughput, {result['vision']} at {result['image_size']} px, batch {result['batch']}, "
          f"{result['threads']} CPU threads (synthetic pixels, real sentences)")
    print(f"{'mask':>6} {'tower img/s':>12} {'x vs 0':>7} {'step img/s':>11} {'x vs 0':>7}")
    for r in result["rows"]:
        print(f"{r['mask_ratio']:>6.2f} {r['tower_samples_per_s']:>12.1f} {r['tower_speedup']:>7.2f} "
              f"{r['step_samples_per_s']:>11.1f} {r['step_speedup']:>7.2f}")
    top = result["rows"][-1]
    if "step_full_svd_samples_per_s" in top:
        power, full = top["step_power_svd_samples_per_s"], top["step_full_svd_samples_per_s"]
        print(f"σ1 by power iteration vs full SVD at mask {top['mask_ratio']:.2f} (alternating steps, medians): "
              f"{power:.1f} vs {full:.1f} img/s ({power / full:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
