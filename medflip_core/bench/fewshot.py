"""Few-label benchmark, the measure of a model's frozen image features (issue 32): the protocol is
medflip_core.evaluation.fewshot, the features medflip_core.evaluation.features; this prints the table.

Every image of a task is embedded once by the frozen image tower of each model; then, for k = 5, 10, 20, 40
labelled PATIENTS per class, a logistic regression is fitted on the k + k patients of a random draw and scored
(ROC AUC) on every other patient of the task, over 20 patient-disjoint draws; the mean and the spread (standard
deviation over draws) are printed. The same draws are used, side by side, for the raw 32x32 pixels (the one
preprocessing path at 32 px) and for a randomly initialised tower of the first model's shape, so "better than
pixels" and "better than an untrained tower" are visible, and every model's difference from the pixels is
computed draw by draw (paired). A third baseline, `intensity`, is two numbers per film: the mean and the spread of
those 32x32 input pixels (the film's overall density and contrast). A task it reads well can be answered without
looking at any structure (exposure, body size, or a diffuse whitening of the lungs), so a feature set's lead over
the pixels means more where this column is near chance.

The tasks and the protocol: medflip_core.evaluation.fewshot (one image per patient, no patient on both
sides). At most `--max-per-class` patients per class.

A model is a bundle (embedded through its ONNX image encoder, as the app embeds), or a trainer checkpoint or
run folder (its latest checkpoint; the image tower in torch): a run can be measured before it is exported.
Features: the image embedding (`embedding`, what zero-shot and the probe use) and the mean of the projected
patch tokens (`patch_mean`). Features are cached per model (`--cache-dir`), so a re-run embeds nothing again.

Caveats: these are the shared folders, which the bundled models were pre-trained on, with their labels: the
Kermany classes, and NIH's findings (the label CSV, mapped to the label space) on the NIH patients outside the
validation split, so the NIH tasks are not new questions for such a model; bacterial vs viral and TB activity are
named by no training label. A run given the TBX11K images as `--unlabelled` has reconstructed those films (never
their labels). The logistic regression is not tuned (fixed C, `--C`): nothing is chosen on the scored patients.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medflip_core.evaluation.features import (
    FEATURES,
    HIDDEN_FEATURES,
    PIXEL_SIZE,
    FeatureSource,
    default_cache_dir,
    embed,
    model_source,
    pixel_source,
    random_source,
)
from medflip_core.evaluation.fewshot import (
    DRAWS,
    KS,
    MAX_PER_CLASS,
    TASKS,
    Task,
    add_deltas,
    build_tasks,
    run_protocol,
)
from medflip_core.imaging.exposure import exposure_stats
from medflip_core.resources import default_shared_data


def measure(models: Sequence[str], tasks: dict[str, Task], ks: Sequence[int], draws: int, seed: int, c: float,
            cache_dir: Path | None, threads: int | None, with_random: bool = True,
            features: Sequence[str] = FEATURES) -> dict:
    paths = sorted({p for t in tasks.values() for p in t.paths})
    sources: list[tuple[str, FeatureSource]] = [("pixels", pixel_source())]
    model_sources = []
    for spec in models:
        source, mcfg, pre = model_source(spec, threads)
        model_sources.append((source, mcfg, pre))
    if with_random and model_sources:
        _, mcfg, pre = model_sources[0]
        sources.append(("random", random_source(mcfg, pre, seed, threads)))
    for i, (source, _, _) in enumerate(model_sources):
        sources.append((f"model{i + 1}", source))
    columns: dict[str, dict[str, np.ndarray]] = {}
    described: dict[str, dict] = {}
    embedded: dict[str, int] = {}
    for tag, source in sources:
        t0 = time.perf_counter()
        cache, n_new = embed(source, paths, cache_dir)
        embedded[tag] = n_new
        for feature in source.features:
            if tag != "pixels" and feature not in features:
                continue
            col = tag if tag == "pixels" else f"{tag}:{feature}"
            columns[col] = {name: cache.matrix(t.paths, feature) for name, t in tasks.items()}
            described[col] = {"source": source.label, "feature": feature, "cache_key": source.key,
                              "embedded_now": n_new, "embed_s": time.perf_counter() - t0}
    if "pixels" in columns:
        columns["intensity"] = {name: exposure_stats(m) for name, m in columns["pixels"].items()}
        described["intensity"] = {"source": f"film intensity (mean and spread of the {PIXEL_SIZE}x{PIXEL_SIZE} input)",
                                  "feature": "intensity", "cache_key": described["pixels"]["cache_key"],
                                  "embedded_now": 0, "embed_s": 0.0}
    results = run_protocol(tasks, columns, ks, draws, seed, c)
    add_deltas(results, "pixels")
    return {"ks": list(ks), "draws": draws, "seed": seed, "C": c, "max_patients_per_class": None,
            "columns": described, "embedded_now": embedded, "n_images": len(paths), "tasks": results,
            "cache_dir": str(cache_dir) if cache_dir else None}


def format_table(result: dict) -> str:
    ks = result["ks"]
    lines = [f"few-label ROC AUC (logistic regression, C={result['C']}, on k labelled patients per class; mean ± "
             f"spread over {result['draws']} patient-disjoint draws, scored on every other patient; "
             "Δpix: paired mean difference from the raw pixels, draws ahead)"]
    for col, d in result["columns"].items():
        plain = col in ("pixels", "intensity")  # baselines: the source says it all
        lines.append(f"  {col:<22} {d['source']}" + ("" if plain else f" [{d['feature']}]"))
    for name, per_task in result["tasks"].items():
        counts = ", ".join(f"{n} {c}" for n, c in per_task["patients"].items())
        lines.append(f"\n{name} ({counts} patients)")
        lines.append(f"  {'':<22}" + "".join(f"{'k=' + str(k):>24}" for k in ks))
        for col, by_k in per_task["columns"].items():
            cells = []
            for k in ks:
                e = by_k[str(k)]
                if e is None:
                    cells.append(f"{'n/a':>24}")
                    continue
                delta = e.get("vs_pixels")
                extra = f" Δ{delta['mean']:+.3f}/{delta['draws_ahead']}" if delta else ""
                cells.append(f"{e['mean']:.3f}±{e['std']:.3f}{extra}".rjust(24))
            lines.append(f"  {col:<22}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench fewshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None,
                        help="a bundle (name or folder), a trainer checkpoint, or a run folder (its latest "
                             "checkpoint); repeat to compare several on the same draws (default: the bundled "
                             "medflip-default)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of: {', '.join(TASKS)}")
    parser.add_argument("--ks", default=",".join(str(k) for k in KS), help="labelled patients per class")
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--max-per-class", type=int, default=MAX_PER_CLASS,
                        help="patients per class of a task at most (a fixed seeded choice)")
    parser.add_argument("--features", default=",".join(FEATURES),
                        help=f"of the models: {', '.join(FEATURES)}; of trainer checkpoints and the random tower "
                             f"also {', '.join(HIDDEN_FEATURES)} (the tower's last hidden states before the "
                             "projection: class token, mean of the patch tokens)")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    parser.add_argument("--seed", type=int, default=0, help="draws, the per-class choice, the random tower")
    parser.add_argument("--no-random", action="store_true", help="leave out the randomly initialised tower")
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where features are cached (default: the user data folder's cache/fewshot)")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    features = [f.strip() for f in args.features.split(",") if f.strip()]
    if set(features) - set(FEATURES) - set(HIDDEN_FEATURES):
        parser.error(f"--features: of {', '.join((*FEATURES, *HIDDEN_FEATURES))}")
    shared = args.data or default_shared_data()
    tasks = build_tasks(shared, names, args.max_per_class, args.seed)
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    result = measure(args.model or ["medflip-default"], tasks, ks, args.draws, args.seed, args.C, cache_dir,
                     args.threads, not args.no_random, features)
    result["max_patients_per_class"] = args.max_per_class
    result["data"] = str(shared)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
