"""Benchmarks that print figures: `medflip bench NAME [options]`, or `python -m medflip_core.bench.MODULE`.

Speed targets live here, not in timed tests. Every benchmark module has `main(argv) -> int` with its own
options (`medflip bench NAME --help`); `BENCHMARKS` is the only list of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from medflip_core.errors import MedflipError


@dataclass(frozen=True)
class Benchmark:
    module: str
    help: str

    def main(self, argv: list[str]) -> int:
        """The module is imported only when its benchmark runs: most of them pull in torch or ONNX Runtime."""
        return int(importlib.import_module(self.module).main(argv))


BENCHMARKS: dict[str, Benchmark] = {
    "labeler": Benchmark("medflip_core.bench.labeler_agreement",
                         "labeler vs the IU reports' MeSH major tags (per-class precision/recall)"),
    "throughput": Benchmark("medflip_core.bench.throughput",
                            "training samples/s at mask 0, 0.5, 0.75 (image tower and whole step, as ratios); "
                            "sigma_1 by power iteration vs the full SVD"),
    "loading": Benchmark("medflip_core.bench.loading",
                         "pre-training on a folder of full-size DICOMs: img/s per epoch with and without the "
                         "trainer's decoded-image cache"),
    "open": Benchmark("medflip_core.bench.open_study",
                      "opening 1,000 full-size DICOMs (links to one CR film, a mixed real folder, distinct copies): "
                      "peak RSS, time to the first image's pixels and to the end (--gui: in the main window)"),
    "batch": Benchmark("medflip_core.bench.batch_stall",
                       "batch scoring in the main window: longest event-loop stall with the files decoded in the "
                       "reader processes vs in the window's process (one run)"),
    "inference": Benchmark("medflip_core.bench.inference",
                           "ONNX Runtime vs torch eager image embedding (batch 1); DICOM file -> scores time"),
    "startup": Benchmark("medflip_core.bench.startup", "desktop app launch -> main window shown"),
    "ablation": Benchmark("medflip_core.bench.ablation",
                          "MedFLIP vs no-mask, no-SVD, CLIP InfoNCE, MedCLIP at equal wall-clock budget, "
                          "paired bootstrap against MedFLIP on the same validation images"),
    "fewshot": Benchmark("medflip_core.bench.fewshot",
                         "frozen image features -> logistic regression on k = 5..40 labelled patients per class, "
                         "20 patient-disjoint draws, ROC AUC beside raw 32x32 pixels and a random tower"),
    "probe": Benchmark("medflip_core.bench.probe",
                       "fine-tuning probe: wall time with an empty and a full embedding cache, validation ROC AUC "
                       "beside the base model's zero-shot on the same patients (paired bootstrap)"),
    "ood": Benchmark("medflip_core.bench.ood",
                     "image-content out-of-distribution check on held-out real images: share of chest films "
                     "(Kermany, NIH, TBX11K) wrongly flagged and of non-chest images caught"),
    "findings": Benchmark("medflip_core.bench.findings",
                          "zero-shot ROC AUC per finding on the NIH adult sample: nine findings typed together, "
                          "mean over the nine, on the patients the model held out and those it trained on"),
    "pointing": Benchmark("medflip_core.bench.pointing",
                          "does a zero-shot heat-map point at the finding: its hottest patch inside a TBX11K "
                          "tuberculosis box, per label, beside chance (the boxes' share of the film)"),
    "active": Benchmark("medflip_core.bench.active",
                        "the labelling loop simulated on Kermany and NIH: test ROC AUC after 10-160 answers and the "
                        "answers needed to reach zero-shot + 0.05, default (uncertainty) order vs random"),
    "labelling": Benchmark("medflip_core.bench.labelling",
                           "the Labelling tab in the main window (offscreen, 1280x800): 100 real films answered "
                           "with keys, key press -> next film on screen (median, p95, max, over 200 ms), refits"),
}


def run_benchmark(name: str, argv: list[str]) -> int:
    bench = BENCHMARKS.get(name)
    if bench is None:
        raise MedflipError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    return bench.main(argv)
