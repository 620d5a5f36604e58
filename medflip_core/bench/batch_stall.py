"""Batch scoring in the main window: the longest stall of its event loop while a folder of real DICOMs is
scored, with the files decoded in the window's reader processes (the Batch tab) and in the window's own process
(before), measured in one run (`python -m app.bench.batch_report`, offscreen). The folder: `--count` distinct copies
of the real JPEG 2000 lossless CR film (pylibjpeg-openjpeg holds the GIL ~1 s on each), or `--folder`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from medflip_core.bench.open_study import write_distinct

FILM = "RG1_J2KR.dcm"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench batch", description=__doc__)
    parser.add_argument("--count", type=int, default=8, help="distinct copies of the JPEG 2000 film (default 8)")
    parser.add_argument("--folder", default="", help="score this folder instead")
    parser.add_argument("--data", default="", help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[2]
    data = Path(args.data or os.environ.get("MEDFLIP_SHARED_DATA", repo.parent / "shared" / "data"))
    tmp = Path(tempfile.mkdtemp(prefix="medflip-bench-batch-"))
    try:
        if args.folder:
            folder = Path(args.folder)
        elif (data / "dicom" / FILM).is_file():
            (tmp / "study").mkdir()
            folder = write_distinct([data / "dicom" / FILM], tmp / "study", args.count)
        else:
            raise SystemExit(f"{data / 'dicom' / FILM} not found: pass --data (the shared data folder)")
        proc = subprocess.run([sys.executable, "-m", "app.bench.batch_report", str(folder)], capture_output=True,
                              text=True, timeout=3600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the batch report failed: {proc.stderr[-2000:]}")
    result = {"folder": args.folder or f"{args.count} distinct copies of {FILM}", "cpus": os.cpu_count(),
              **json.loads(line)}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    w, h = result["in_workers"], result["in_window_process"]
    print(f"batch scoring {result['folder']} in the main window (offscreen, {result['cpus']} CPUs):")
    for name, r in (("decoded in the reader processes", w), ("decoded in the window's process", h)):
        print(f"  {name:34s} {r['rows']} rows in {r['wall_s']:.1f} s; longest event-loop stall "
              f"{r['longest_event_loop_stall_s']:.2f} s, {r['stalls_over_100ms']} stall(s) over 100 ms")
    ratio = h["longest_event_loop_stall_s"] / max(w["longest_event_loop_stall_s"], 1e-3)
    print(f"  longest stall, window's process / reader processes: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
