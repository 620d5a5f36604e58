"""Where shipped resources live: <repo>/resources from a source checkout, <bundle>/resources when frozen;
where the shared real data sets live (benchmarks and tests read them, never ship them); and the user's data
folder (models, runs, caches, labels)."""

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


def user_data_dir() -> Path:
    """The platformdirs user data folder; MEDFLIP_DATA_DIR overrides it (e.g. for tests)."""
    env = os.environ.get("MEDFLIP_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir as _user_data_dir

    return Path(_user_data_dir("medflip-studio", "MedFLIP"))
