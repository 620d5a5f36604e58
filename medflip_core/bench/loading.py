"""Training on a folder of full-size DICOM radiographs: images per second in each epoch, with the trainer's
decoded-image cache (`--image-cache-mb`, trainer/image_cache.py) and without it, in one run.

The folder is built from the real chest radiographs in ../shared/data/dicom (CR and DX; uncompressed, JPEG
baseline and JPEG 2000, MONOCHROME1 and 2), each linked several times under NORMAL/ and PNEUMONIA/ so that an
epoch has several batches. Decoding these costs 30-740 ms per image on this CPU, against about 17 ms of compute
per image in a masked MedFLIP step: without a cache every epoch pays it again. The two runs are two trainer
processes, one after the other (cache off, then on); the ratio to read is the one within the cache-on run,
its later epochs against its first (which decodes), since both are timed minutes apart at most.

`--decode-only` times decoding alone, per file: in the process, in loader threads, and in worker processes
(`--decode-in processes`, medflip_core/imaging/decode_pool.py), the three modes taking turns in every round. It shows
which decoders threads cannot run in parallel (those that hold the GIL) and what worker processes give back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medflip_core.bench.trainer_run import pretrain_steps
from medflip_core.imaging.decode_pool import DecodePool, decode_for_training
from medflip_core.imaging.preprocess import PreprocessConfig
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


def epoch_rates(images: Path, corpus: Path, batch: int, epochs: int, cache_mb: float, augment: bool,
                loader: tuple[str, ...] = ()) -> dict:
    """Median images/s of the trainer's steps in each epoch (a separate trainer process); `loader`: the trainer's
    loader flags (--num-workers, --decode-in)."""
    args = ["--images", str(images), "--corpus", str(corpus), "--max-sentences", "256", "--batch-size", str(batch),
            "--epochs", str(epochs), "--eval-every", "0", "--checkpoint-every", "100000", "--val-fraction", "0.05",
            "--warmup-steps", "0", "--image-cache-mb", str(cache_mb), *loader]
    steps = pretrain_steps([*args, "--augment"] if augment else args)
    by_epoch: dict[int, list[float]] = {}
    for event in steps:
        by_epoch.setdefault(event.epoch, []).append(event.samples_per_s)
    return {"cache_mb": cache_mb, "augment": augment, "loader": " ".join(loader), "steps": len(steps),
            "epoch_samples_per_s": [statistics.median(by_epoch[e]) for e in sorted(by_epoch)]}


def decode_rates(files: list[Path], repeats: int, workers: int, rounds: int, image_size: int = 224) -> dict:
    """Images/s decoding each file `repeats` times to the model input: serially, in `workers` threads, and in
    `workers` threads handing the files to `workers` worker processes; medians over rounds taking turns."""
    pre = PreprocessConfig(image_size=image_size)
    threads = ThreadPoolExecutor(workers)
    started = time.perf_counter()
    pool = DecodePool(workers)
    list(threads.map(lambda f: pool.decode(f, pre, False), files[:1] * workers))  # every worker up and importing
    start_s = time.perf_counter() - started
    modes = {
        "serial": lambda f: [decode_for_training(f, pre, False) for _ in range(repeats)],
        "threads": lambda f: list(threads.map(lambda _: decode_for_training(f, pre, False), range(repeats))),
        "processes": lambda f: list(threads.map(lambda _: pool.decode(f, pre, False), range(repeats))),
    }
    seconds: dict = {(f.name, m): [] for f in files for m in modes}
    try:
        for _ in range(rounds):
            for f in files:
                for mode, run in modes.items():
                    t0 = time.perf_counter()
                    run(f)
                    seconds[(f.name, mode)].append(time.perf_counter() - t0)
    finally:
        pool.close()
        threads.shutdown()
    per_file = {f.name: {m: repeats / statistics.median(seconds[(f.name, m)]) for m in modes} for f in files}
    return {"workers": workers, "repeats": repeats, "rounds": rounds, "pool_start_s": start_s, "files": per_file}


def print_decode_rates(result: dict) -> None:
    w = result["workers"]
    print(f"decoding to the model input, {result['repeats']} decodes per file and mode, medians of "
          f"{result['rounds']} rounds; {w} threads / {w} worker processes (started in {result['pool_start_s']:.1f} s)")
    print(f"{'file':<36} {'serial img/s':>12} {'threads':>16} {'processes':>16}")
    for name, r in result["files"].items():
        print(f"{name:<36} {r['serial']:>12.2f} {r['threads']:>8.2f} ({r['threads'] / r['serial']:.2f}x) "
              f"{r['processes']:>8.2f} ({r['processes'] / r['serial']:.2f}x)")


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
    parser.add_argument("--num-workers", type=int, default=0,
                        help="the trainer's loader workers (both runs); with --decode-only the threads and the "
                             "worker processes timed (0: 2)")
    parser.add_argument("--decode-in", default="threads", choices=("threads", "processes"),
                        help="the trainer's --decode-in (both runs)")
    parser.add_argument("--decode-only", action="store_true",
                        help="time decoding alone: serial, loader threads, worker processes")
    parser.add_argument("--repeats", type=int, default=4, help="--decode-only: decodes per file, mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="--decode-only: rounds (medians)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    missing = [name for name in CHEST_DICOMS if not (args.dicoms / name).is_file()]
    if missing:
        parser.error(f"{args.dicoms} lacks {', '.join(missing)}")
    if args.decode_only:
        decoded = decode_rates([args.dicoms / name for name in CHEST_DICOMS], args.repeats, args.num_workers or 2,
                               args.rounds)
        if args.json:
            json.dump(decoded, sys.stdout, indent=2)
            print()
        else:
            print_decode_rates(decoded)
        return 0
    with tempfile.TemporaryDirectory(prefix="medflip-dicom-folder-") as tmp:
        n = dicom_folder(args.dicoms, Path(tmp), args.copies)
        loader = ("--num-workers", str(args.num_workers), "--decode-in", args.decode_in)
        runs = [epoch_rates(Path(tmp), args.corpus, args.batch, args.epochs, mb, args.augment, loader)
                for mb in (0.0, args.cache_mb)]
    result = {"images": n, "batch": args.batch, "files": list(CHEST_DICOMS), "runs": runs}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"pre-training on {n} DICOM radiographs ({len(CHEST_DICOMS)} real chest files linked {args.copies} times; "
          f"batch {args.batch}, mask 0.75{', augmented' if args.augment else ''}; loader: {runs[0]['loader']}): "
          "median img/s of each epoch's steps")
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
