"""Where shipped resources live: <repo>/resources from a source checkout, <bundle>/resources when frozen;
and where the shared real data sets live (benchmarks and tests read them, never ship them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("MEDFLIP_RESOURCES")
    if env:
        return Path(env)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def default_shared_data() -> Path:
    """../shared/data beside the checkout, or $MEDFLIP_SHARED_DATA."""
    env = os.environ.get("MEDFLIP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
