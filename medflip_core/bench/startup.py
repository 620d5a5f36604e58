"""Start-up time of the desktop app: from launching the process to the main window being shown."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time


def measure(runs: int, offscreen: bool) -> list[float]:
    times = []
    for _ in range(runs):
        env = {**os.environ, "MEDFLIP_LAUNCH_TIME": repr(time.time())}
        args = [sys.executable, "-m", "app.main", "--startup-report"] + (["--offscreen"] if offscreen else [])
        out = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        match = re.search(r"window shown ([0-9.]+) s", out.stdout)
        if not match:
            raise SystemExit(f"the app did not report its start-up: {out.stderr[-1000:]}")
        times.append(float(match.group(1)))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--display", action="store_true", help="use the real display instead of offscreen")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    times = measure(args.runs, offscreen=not args.display)
    result = {"runs": args.runs, "median_s": statistics.median(times), "max_s": max(times), "all_s": times,
              "target_s": 2.5}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(f"medflip-studio start-up to window shown: median {result['median_s']:.2f} s, "
              f"max {result['max_s']:.2f} s over {args.runs} launches (target 2.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
