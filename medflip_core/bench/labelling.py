"""Labelling with the keyboard in the real main window: how long the user waits between films.

A temp folder of links to `--films` real Kermany training films (half NORMAL, half PNEUMONIA, spread over each
class's sorted list, so over many patients) is opened in the Labelling tab of the real main window (offscreen,
1280x800, `python -m app.bench.labelling_report`), default order, fresh user folders (so the embedding cache is
cold: the time to prepare is a first opening's). `--answers` films are answered with key presses (the truth from the
file name: `person…` = Pneumonia), the user looking at each film `--think` seconds first. For every answer: the time
from the key press until the next film's pixels are painted in the viewer (its file's reading included when it was
not read ahead). Printed: median, 95th percentile and max of that wait, how many waits were over 200 ms (issue 30:
never more than 0.2 s between films), the time to prepare the folder, the refits of the head during the run and the
final learning-curve point.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TARGET_MS = 200.0
KERMANY = Path("cxr-pneumonia-kermany") / "train"


def make_study(data: Path, out: Path, films: int) -> Path:
    """`out` holding links to `films` real Kermany films, half of each class, evenly spread over each class's
    sorted file list (and so over many patients)."""
    out.mkdir(parents=True)
    halves = {"NORMAL": films // 2, "PNEUMONIA": films - films // 2}
    for cls, n in halves.items():
        files = sorted((data / KERMANY / cls).iterdir())
        if len(files) < n:
            raise SystemExit(f"{data / KERMANY / cls} holds {len(files)} films, fewer than {n}")
        for i in np.linspace(0, len(files) - 1, n).round().astype(int):
            (out / files[i].name).symlink_to(files[i])
    return out


def summarise(report: dict, target_ms: float = TARGET_MS) -> dict:
    """The figures of a report of `app.bench.labelling_report.measure`: wait statistics in ms and counts."""
    waits = np.array([a["latency_ms"] for a in report["answers"]], dtype=float)
    some = len(waits) > 0
    return {
        "answers": len(waits),
        "median_ms": float(np.median(waits)) if some else None,
        "p95_ms": float(np.percentile(waits, 95)) if some else None,
        "max_ms": float(waits.max()) if some else None,
        "over_target": int((waits > target_ms).sum()),
        "target_ms": target_ms,
        "handler_median_ms": float(np.median([a["handler_ms"] for a in report["answers"]])) if some else None,
        "handler_max_ms": max((a["handler_ms"] for a in report["answers"]), default=None),
        "not_read_ahead": sum(not a["read_ahead"] for a in report["answers"]),
        "during_refit": sum(bool(a["refitting"]) for a in report["answers"]),
        "max_ms_during_refit": max((a["latency_ms"] for a in report["answers"] if a["refitting"]), default=None),
        "prepare_s": report["prepare_s"],
        "refits": report["refits"],
        "final_point": report["final_point"],
    }


def run_report(folder: Path, answers: int, think_s: float, user_dirs: Path) -> dict:
    # the window's measurement lives in app (medflip_core imports no Qt): started as a process, not imported
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEDFLIP_CONFIG_DIR": str(user_dirs / "config"),
           "MEDFLIP_DATA_DIR": str(user_dirs / "data")}
    proc = subprocess.run([sys.executable, "-m", "app.bench.labelling_report", str(folder), str(answers),
                           str(think_s)], capture_output=True, text=True, timeout=3600, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the labelling report failed: {proc.stderr[-3000:]}")
    return json.loads(line)


def print_figures(figures: dict, films: int, think_s: float) -> None:
    f = figures
    print(f"labelling {films} real Kermany films in the main window (offscreen, 1280x800), {f['answers']} answers "
          f"with key presses, {think_s:.2f} s looking at each film:")
    if f["answers"]:
        print(f"  key press -> next film on screen: median {f['median_ms']:.1f} ms, 95th percentile "
              f"{f['p95_ms']:.1f} ms, max {f['max_ms']:.1f} ms; {f['over_target']} of {f['answers']} over "
              f"{f['target_ms']:.0f} ms")
        print(f"  of which in the key's handler (answer on disk, next film chosen and shown): median "
              f"{f['handler_median_ms']:.1f} ms, max {f['handler_max_ms']:.1f} ms")
        during = (f", max {f['max_ms_during_refit']:.1f} ms" if f["max_ms_during_refit"] is not None else "")
        print(f"  {f['not_read_ahead']} film(s) not read ahead at the press; {f['during_refit']} press(es) while "
              f"a refit ran{during}")
    print(f"  preparing the folder (embedding, cold cache) to the first film on screen: {f['prepare_s']:.1f} s")
    print(f"  refits of the head during the run: {f['refits']}")
    p = f["final_point"]
    if p is None:
        print("  final learning-curve point: none (the validation films do not yet hold every class)")
    else:
        print(f"  final learning-curve point: {p['labels']} labels, validation AUC {p['auc']:.3f} (95 % CI "
              f"{p['ci95'][0]:.3f}-{p['ci95'][1]:.3f}) on {p['val_films']} films of {p['val_patients']} patients; "
              f"zero-shot {p['zero_shot_auc']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench labelling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", type=int, default=120, help="films in the folder (default 120)")
    parser.add_argument("--answers", type=int, default=100, help="films answered (default 100)")
    parser.add_argument("--think", type=float, default=0.5, help="seconds the user looks at a film (default 0.5)")
    parser.add_argument("--data", default="", help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--json", action="store_true", help="the figures and every answer's wait as JSON")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[2]
    data = Path(args.data or os.environ.get("MEDFLIP_SHARED_DATA", repo.parent / "shared" / "data"))
    if not (data / KERMANY).is_dir():
        raise SystemExit(f"{data / KERMANY} not found: pass --data (the shared data folder)")
    tmp = Path(tempfile.mkdtemp(prefix="medflip-bench-labelling-"))
    try:
        folder = make_study(data, tmp / "study", args.films)
        report = run_report(folder, args.answers, args.think, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures = summarise(report)
    if args.json:
        json.dump({"figures": figures, "report": report}, sys.stdout, indent=2)
        print()
        return 0
    print_figures(figures, args.films, args.think)
    return 0


if __name__ == "__main__":
    sys.exit(main())
