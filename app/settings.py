"""Settings that persist between sessions (JSON in the platformdirs user config folder)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from medflip_core.atomic import write_text_atomic


def settings_path() -> Path:
    env = os.environ.get("MEDFLIP_CONFIG_DIR")
    if env:
        return Path(env) / "settings.json"
    from platformdirs import user_config_dir

    return Path(user_config_dir("medflip-studio", "MedFLIP")) / "settings.json"


class Settings:
    def __init__(self) -> None:
        self.path = settings_path()
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        with contextlib.suppress(OSError):  # settings are a convenience; never fail an action over them
            write_text_atomic(self.path, json.dumps(self.data, indent=2))

    def pixel_cache_mb(self) -> float:
        """Megabytes of full-resolution pixels kept for opened images (`pixel_cache_mb`; the rest is decoded
        again when shown or scored). A value that is not a positive number falls back to the default."""
        from medflip_core.imaging.pixel_cache import DEFAULT_LIMIT_MB

        value = self.get("pixel_cache_mb", DEFAULT_LIMIT_MB)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return DEFAULT_LIMIT_MB
        return value if value > 0 else DEFAULT_LIMIT_MB

    def add_recent(self, paths: str | list[str], limit: int = 10) -> list[str | list[str]]:
        """One entry per opening: a path, or the list of paths dropped together (re-opened together)."""
        entry: str | list[str] = paths if isinstance(paths, str) else (paths[0] if len(paths) == 1 else list(paths))
        if not entry:
            return self.get("recent", [])
        recent = [e for e in self.get("recent", []) if e != entry]
        recent.insert(0, entry)
        self.set("recent", recent[:limit])
        return recent[:limit]

    def remove_recent(self, path: str) -> None:
        """Forget a path: a single-path entry, or that path inside an entry of several."""
        recent = self.get("recent", [])
        kept: list[str | list[str]] = []
        for entry in recent:
            if isinstance(entry, list):
                entry = [p for p in entry if p != path]
                entry = entry[0] if len(entry) == 1 else entry
            if entry and entry != path:
                kept.append(entry)
        if kept != recent:
            self.set("recent", kept)
