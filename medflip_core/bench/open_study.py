"""Opening a study of 1,000 full-size DICOMs: peak RSS, time to the first image's pixels, time to the end.

Cases (each in a fresh process, so its peak RSS is its own; VmHWM from /proc/self/status):
- `links`: 1,000 symbolic links in a temp folder to the 1955x1841 CR film (`RG1_UNCR.dcm`), the case that grew
  a window to 8.57 GB at 300 links and was OOM-killed at 24 GB with 1,000;
- `mixed`: 1,000 links cycling over every real DICOM of ../shared/data/dicom (JPEG 2000 lossless and lossy,
  JPEG baseline, uncompressed, 169x211 to 1955x1841);
- `distinct`: 1,000 different SOP instances written from those real files (each copy gets its own SOP Instance
  UID), so that no file is a duplicate and every one is decoded: the worst case for time and memory.
`--gui` opens each folder in the real main window (offscreen, `python -m app.bench.load_report`) instead of
`session.load_paths`, and reports the longest stall of its event loop during the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("links", "mixed", "distinct")
CR = "RG1_UNCR.dcm"


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        return int(next(x for x in fh if x.startswith(field + ":")).split()[1]) / 1024


def make_folder(case: str, dicom_dir: Path, out: Path, count: int) -> Path:
    out.mkdir(parents=True)
    sources = [dicom_dir / CR] if case == "links" else sorted(dicom_dir.glob("*.dcm"))
    if case in ("links", "mixed"):
        for i in range(count):
            (out / f"im{i:04d}.dcm").symlink_to(sources[i % len(sources)])
        return out
    return write_distinct(sources, out, count)


def write_distinct(sources: list[Path], out: Path, count: int) -> Path:
    """`count` files in `out` cycling over the real DICOMs `sources`, each with its own SOP Instance UID (no file
    is a duplicate of another: every one is decoded)."""
    import pydicom

    datasets = [pydicom.dcmread(s) for s in sources]
    for i in range(count):
        ds = datasets[i % len(datasets)]
        uid = f"{str(ds.SOPInstanceUID)[:50].rstrip('.')}.{i + 1}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.save_as(out / f"im{i:04d}.dcm")
    return out


def _measure_core(folder: Path) -> dict:
    from medflip_core.session import load_paths

    base = _status_mb("VmRSS")
    first: dict[str, float] = {}
    start = time.perf_counter()

    def on_images(images: list) -> None:
        if not first:
            first["listed"] = time.perf_counter() - start
            images[0].arrays()  # what the viewer does with the first image
            first["pixels"] = time.perf_counter() - start

    result = load_paths([str(folder)], on_images=on_images)
    total = time.perf_counter() - start
    return {"baseline_rss_mb": base, "peak_rss_mb": _status_mb("VmHWM"), "end_rss_mb": _status_mb("VmRSS"),
            "first_image_s": first.get("pixels"), "total_s": total, "images": len(result.images),
            "duplicates": sum(len(v) for v in result.duplicates.values()), "errors": len(result.errors)}


def run_case(case: str, folder: Path, gui: bool) -> dict:
    # the window's measurement lives in app (medflip_core imports no Qt): started as a process, not imported
    args = ([sys.executable, "-m", "app.bench.load_report", str(folder)] if gui else
            [sys.executable, "-m", "medflip_core.bench.open_study", "--child", str(folder)])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the {case} case failed: {proc.stderr[-2000:]}")
    return {"case": case, **json.loads(line)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench open", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="links,mixed,distinct", help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--count", type=int, default=1000, help="files per case (default 1000)")
    parser.add_argument("--gui", action="store_true", help="open in the real main window (offscreen)")
    parser.add_argument("--data", default="", help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure_core(Path(args.child))))
        return 0
    repo = Path(__file__).resolve().parents[2]
    data = Path(args.data or os.environ.get("MEDFLIP_SHARED_DATA", repo.parent / "shared" / "data"))
    dicom_dir = data / "dicom"
    if not (dicom_dir / CR).is_file():
        raise SystemExit(f"{dicom_dir / CR} not found: pass --data (the shared data folder)")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="medflip-bench-open-"))
    try:
        for case in cases:
            folder = make_folder(case, dicom_dir, tmp / case, args.count)
            results.append(run_case(case, folder, args.gui))
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {"count": args.count, "gui": args.gui, "targets": {"peak_rss_mb": 1536, "first_image_s": 2.0},
               "cpus": os.cpu_count(), "results": results}
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
        return 0
    where = "the main window (offscreen)" if args.gui else "session.load_paths"
    print(f"opening {args.count:,} DICOM files in {where}; targets: peak RSS < 1.5 GB, first image < 2 s")
    for r in results:
        stall = (f", longest event-loop stall {r['longest_event_loop_stall_s']:.2f} s; worker processes' peak RSS "
                 f"{r.get('workers_peak_rss_mb', 0):,.0f} MB in all" if args.gui else "")
        first = f"{r['first_image_s']:.2f} s" if r["first_image_s"] is not None else "never"
        print(f"  {r['case']:8s} peak RSS {r['peak_rss_mb']:,.0f} MB (at start {r['baseline_rss_mb']:,.0f}, "
              f"after {r['end_rss_mb']:,.0f}), first image {first}, all {r['total_s']:.1f} s; "
              f"{r['images']} image(s), {r['duplicates']} duplicate(s), {r['errors']} error(s){stall}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
