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

    def add_recent(self, path: str, limit: int = 10) -> list[str]:
        recent = [p for p in self.get("recent", []) if p != path]
        recent.insert(0, path)
        self.set("recent", recent[:limit])
        return recent[:limit]

    def remove_recent(self, path: str) -> None:
        recent = self.get("recent", [])
        if path in recent:
            self.set("recent", [p for p in recent if p != path])
