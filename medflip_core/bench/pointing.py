"""Does a zero-shot heat-map point at the finding? The pointing game on the TBX11K films' tuberculosis boxes.

    medflip bench pointing [--model medflip-default] [--labels "Tuberculosis,Consolidation,..."] [--films N] [--json]

For every TBX11K film with a box (all 799 by default), the heat-map the Zero-shot tab draws for a label (each
patch's cosine with the label's prompts, `Engine.similarity_map`) is computed, and its hottest patch counts as a hit
when the patch's centre lies inside one of the film's boxes (active or obsolete tuberculosis, drawn by the data
set's readers). Chance is the share of the film's patches whose centres lie in a box: a map that points at random
hits that often. One film per patient (as far as the release says), so the 95 % intervals resample films. The
boxes mark tuberculosis only: a label may rightly point at something else the film shows.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from medflip_core.resources import default_shared_data

LABELS = ("Tuberculosis", "Consolidation", "Lung Opacity", "Pneumonia")
DATA_SET = "TBX11K tuberculosis films (adults, hospitals in China)"


def read_boxes(folder: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """{image file name: [(xmin, ymin, xmax, ymax) in the stored image's pixels]}."""
    boxes: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    with (folder / "boxes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            boxes[row["image"]].append(tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
    return dict(boxes)


def patches_in_boxes(shape: tuple[int, int], grid: tuple[int, int], boxes) -> np.ndarray:
    """(rows, cols) whether each patch's centre lies in a box. The model input is the image letterboxed to a square:
    a patch's centre is mapped back to the image's pixels; patches over the padding are never in a box."""
    from medflip_core.imaging.preprocess import letterbox_geometry

    rows, cols = grid
    h, w = shape
    side = max(h, w)
    _, new_h, new_w, top, left = letterbox_geometry(h, w, side)
    ys = ((np.arange(rows) + 0.5) * side / rows - top) * h / new_h
    xs = ((np.arange(cols) + 0.5) * side / cols - left) * w / new_w
    inside = np.zeros((rows, cols), bool)
    for x0, y0, x1, y1 in boxes:
        inside |= ((ys[:, None] >= y0) & (ys[:, None] <= y1)) & ((xs[None, :] >= x0) & (xs[None, :] <= x1))
    return inside


def measure(model: str | None, folder: Path, labels=LABELS, films: int | None = None, n_boot: int = 1000) -> dict:
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.imaging import load_image
    from medflip_core.inference.engine import Engine
    from medflip_core.metrics import bootstrap_ci

    engine = Engine(resolve_model(model), prefer_gpu=False)
    boxes = read_boxes(folder)
    names = sorted(boxes)[:films] if films else sorted(boxes)
    hits = {label: [] for label in labels}
    chance = []
    for start in range(0, len(names), 16):
        chunk = names[start:start + 16]
        images = [load_image(folder / "images" / name) for name in chunk]
        tokens = engine.embed_images(images).patch_tokens
        for image, name, patch_tokens in zip(images, chunk, tokens, strict=True):
            inside = patches_in_boxes(image.shape, engine.grid, boxes[name])
            chance.append(float(inside.mean()))
            for label in labels:
                heat = engine.similarity_map(patch_tokens, label)
                hits[label].append(bool(inside.ravel()[int(np.nanargmax(heat))]))
    figures = {label: bootstrap_ci(np.mean, np.array(h, float), n_boot=n_boot).as_dict() for label, h in hits.items()}
    return {"model": engine.bundle.name, "data_set": DATA_SET, "films": len(names), "grid": list(engine.grid),
            "chance": bootstrap_ci(np.mean, np.array(chance), n_boot=n_boot).as_dict(), "hottest_patch_in_box": figures}


def format_result(r: dict) -> str:
    def show(fig: dict) -> str:
        low, high = fig["ci95"]
        return f"{fig['value']:.3f} [{low:.3f}–{high:.3f}]"

    rows, cols = r["grid"]
    lines = [f"heat-map pointing game, {r['model']} on {r['films']} {r['data_set']} with boxes; "
             f"{rows}x{cols} patches, 95 % intervals over films (one per patient)",
             f"  chance (share of a film's patches inside a tuberculosis box): {show(r['chance'])}"]
    for label, fig in r["hottest_patch_in_box"].items():
        times = fig["value"] / r["chance"]["value"]
        lines.append(f"  {label:<16s} hottest patch inside a box: {show(fig)}  ({times:.1f}x chance)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench pointing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model bundle (default: medflip-default)")
    parser.add_argument("--data", default=str(default_shared_data() / "cxr-tb-tbx11k"),
                        help="a folder with boxes.csv and images/ (default: the shared TBX11K films)")
    parser.add_argument("--labels", default=",".join(LABELS), help="comma-separated labels whose maps are tested")
    parser.add_argument("--films", type=int, help="only the first N films with a box (a quick look)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    result = measure(args.model, Path(args.data), labels, args.films, args.n_boot)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
