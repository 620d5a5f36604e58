"""How to start the trainer or the `medflip` command as a separate process: `python -m ...` from a source
checkout, the frozen app itself with --trainer / --medflip (see app/main.py) when installed.

The trainer is the layer above medflip_core: core starts it as a process and never imports it.
"""

from __future__ import annotations

import sys


def _frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def trainer_command(args: list[str]) -> tuple[str, list[str]]:
    """(program, arguments) that run `python -m trainer ARGS`, e.g. ARGS = ["pretrain", "--images", ...]."""
    if _frozen():
        return sys.executable, ["--trainer", *args]
    return sys.executable, ["-m", "trainer", *args]


def medflip_command(args: list[str]) -> tuple[str, list[str]]:
    """(program, arguments) that run `medflip ARGS`."""
    if _frozen():
        return sys.executable, ["--medflip", *args]
    return sys.executable, ["-m", "medflip_core.cli", *args]
