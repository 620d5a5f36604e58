"""Inference speed, measured in one run: ONNX Runtime vs torch eager image embedding at batch 1, and the
time from a JPEG 2000 DICOM file on disk to label scores."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _timeit(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def measure(model: str | None, dicom: Path, threads: int, repeats: int) -> dict:
    import torch

    from medflip_core.bundles.bundle import WEIGHTS
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.imaging import load_image
    from medflip_core.imaging.preprocess import preprocess_batch
    from medflip_core.inference.engine import Engine
    from medflip_core.model.export import load_trained_model

    bundle_dir = resolve_model(model)
    engine = Engine(bundle_dir, threads=threads)
    torch.set_num_threads(threads)
    net = load_trained_model(bundle_dir / WEIGHTS, engine.bundle.manifest["model"]).float().eval()
    rg = load_image(dicom)
    pixels = preprocess_batch([rg], engine.pre)
    tensor = torch.from_numpy(pixels)
    ort_s = _timeit(lambda: engine.embed_pixels(pixels), repeats)

    def torch_step() -> None:
        with torch.inference_mode():
            net.encode_image(tensor)

    torch_s = _timeit(torch_step, repeats)
    labels = engine.bundle.default_labels
    engine.classify(engine.embed_pixels(pixels).embedding[0], labels)  # text embeddings cached, as in the app

    def file_to_scores() -> None:
        image = load_image(dicom)
        engine.classify(engine.embed_images([image]).embedding[0], labels)

    e2e = _timeit(file_to_scores, max(3, repeats // 4), warmup=1)
    ort_ms, torch_ms = statistics.median(ort_s) * 1e3, statistics.median(torch_s) * 1e3
    return {"model": engine.bundle.name, "threads": threads, "providers": engine.providers,
            "image_size": engine.pre.image_size, "ort_image_ms_median": ort_ms, "torch_image_ms_median": torch_ms,
            "ort_speedup_vs_torch": torch_ms / ort_ms, "file": dicom.name,
            "file_size": f"{rg.metadata.columns}x{rg.metadata.rows}", "transfer_syntax": rg.metadata.transfer_syntax,
            "file_to_scores_s_median": statistics.median(e2e), "file_to_scores_s_max": max(e2e),
            "n_labels": len(labels), "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    from medflip_core.resources import default_shared_data

    parser = argparse.ArgumentParser(prog="medflip bench inference", description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--dicom", type=Path, default=None, help="default: RG1_J2KR.dcm (1955x1841, JPEG 2000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    dicom = args.dicom or default_shared_data() / "dicom" / "RG1_J2KR.dcm"
    r = measure(args.model, dicom, args.threads, args.repeats)
    if args.json:
        json.dump(r, sys.stdout, indent=2)
        print()
        return 0
    print(f"inference, model {r['model']}, {r['threads']} CPU threads, {r['image_size']} px, batch 1 "
          f"(median of {r['repeats']})")
    print(f"  image embedding: ONNX Runtime {r['ort_image_ms_median']:.1f} ms, torch eager "
          f"{r['torch_image_ms_median']:.1f} ms -> ORT {r['ort_speedup_vs_torch']:.2f}x faster")
    print(f"  {r['file']} ({r['file_size']}, {r['transfer_syntax']}) to {r['n_labels']} label scores: "
          f"median {r['file_to_scores_s_median']:.3f} s, max {r['file_to_scores_s_max']:.3f} s")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
