"""The trainer run as a separate process by the benchmarks that time it on real data (throughput's real-data
line, loading): offline, in a temporary run folder, its step events read back from its stdout."""

from __future__ import annotations

import os
import subprocess
import tempfile

from medflip_core.events import StepEvent, event_from_record, parse_event_line


def pretrain_steps(args: list[str], threads: int | None = None, timeout: float = 3600,
                   what: str = "trainer run") -> list[StepEvent]:
    """Step events of `python -m trainer pretrain ARGS --out-dir TMP`; `threads` sets OMP_NUM_THREADS."""
    from medflip_core.processes import trainer_command

    with tempfile.TemporaryDirectory(prefix="medflip-bench-") as out:
        program, argv = trainer_command(["pretrain", *args, "--out-dir", out])
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        proc = subprocess.run([program, *argv], capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the {what} failed: {proc.stderr[-1500:]}")
    records = (parse_event_line(line) for line in proc.stdout.splitlines())
    return [e for e in (event_from_record(r) for r in records if r) if isinstance(e, StepEvent)]


__all__ = ["pretrain_steps"]
