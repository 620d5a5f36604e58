"""Training on a folder of full-size DICOM radiographs: images per second in each epoch, with the trainer's
decoded-image cache (`--image-cache-mb`, trainer/image_cache.py) and without it, in one run.

The folder is built from the real chest radiographs in ../shared/data/dicom (CR and DX; uncompressed, JPEG
baseline and JPEG 2000, MONOCHROME1 and 2), each linked several times under NORMAL/ and PNEUMONIA/ so that an
epoch has several batches. Decoding these costs 30-740 ms per image on this CPU, against about 17 ms of compute
per image in a masked MedFLIP step: without a cache every epoch pays it again. The two runs are two trainer
processes, one after the other (cache off, then on); the ratio to read is the one within the cache-on run,
its later epochs against its first (which decodes), since both are timed minutes apart at most.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from medflip_core.bench.trainer_run import pretrain_steps
from medflip_core.resources import default_shared_data

CHEST_DICOMS = ("RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm", "rsna_cr_chest_jpeg_baseline.dcm",
                "rsna_cr_chest_fake_monochrome1.dcm", "nih_dx_secondary_capture.dcm")


def dicom_folder(source: Path, target: Path, copies: int) -> int:
    """An ImageFolder of links to the chest DICOMs of `source`, `copies` of each; returns the image count."""
    count = 0
    for copy in range(copies):
        for k, name in enumerate(CHEST_DICOMS):
            folder = target / ("NORMAL" if (copy + k) % 2 else "PNEUMONIA")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"c{copy:03d}_{name}").symlink_to(source / name)
            count += 1
    return count


def epoch_rates(images: Path, corpus: Path, batch: int, epochs: int, cache_mb: float, augment: bool) -> dict:
    """Median images/s of the trainer's steps in each epoch (a separate trainer process)."""
    args = ["--images", str(images), "--corpus", str(corpus), "--max-sentences", "256", "--batch-size", str(batch),
            "--epochs", str(epochs), "--eval-every", "0", "--checkpoint-every", "100000", "--val-fraction", "0.05",
            "--warmup-steps", "0", "--image-cache-mb", str(cache_mb)]
    steps = pretrain_steps([*args, "--augment"] if augment else args)
    by_epoch: dict[int, list[float]] = {}
    for event in steps:
        by_epoch.setdefault(event.epoch, []).append(event.samples_per_s)
    return {"cache_mb": cache_mb, "augment": augment, "steps": len(steps),
            "epoch_samples_per_s": [statistics.median(by_epoch[e]) for e in sorted(by_epoch)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench loading", description=__doc__)
    shared = default_shared_data()
    parser.add_argument("--dicoms", type=Path, default=shared / "dicom", help="folder holding the chest DICOMs")
    parser.add_argument("--corpus", type=Path, default=shared / "iu-xray-reports" / "NLMCXR_reports.tgz")
    parser.add_argument("--copies", type=int, default=11, help="links to each DICOM (6 files each time)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cache-mb", type=float, default=2048)
    parser.add_argument("--augment", action="store_true", help="train-only augmentation, as the default model's")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    missing = [name for name in CHEST_DICOMS if not (args.dicoms / name).is_file()]
    if missing:
        parser.error(f"{args.dicoms} lacks {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="medflip-dicom-folder-") as tmp:
        n = dicom_folder(args.dicoms, Path(tmp), args.copies)
        runs = [epoch_rates(Path(tmp), args.corpus, args.batch, args.epochs, mb, args.augment)
                for mb in (0.0, args.cache_mb)]
    result = {"images": n, "batch": args.batch, "files": list(CHEST_DICOMS), "runs": runs}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"pre-training on {n} DICOM radiographs ({len(CHEST_DICOMS)} real chest files linked {args.copies} times; "
          f"batch {args.batch}, mask 0.75{', augmented' if args.augment else ''}): median img/s of each epoch's steps")
    for run in runs:
        rates = " / ".join(f"{r:.1f}" for r in run["epoch_samples_per_s"])
        label = f"image cache {run['cache_mb']:.0f} MB" if run["cache_mb"] else "no image cache"
        print(f"  {label:<20} epochs 1..{len(run['epoch_samples_per_s'])}: {rates}")
    cached = runs[1]["epoch_samples_per_s"]
    if len(cached) > 1:
        print(f"with the cache, later epochs run {statistics.median(cached[1:]) / cached[0]:.1f}x the first "
              f"(which decodes); without it, every epoch decodes again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
