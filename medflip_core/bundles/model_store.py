"""Where model bundles live: the bundled default under resources/models, the user's under the user data folder
(medflip_core.resources.user_data_dir)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medflip_core.bundles.bundle import MANIFEST
from medflip_core.errors import MedflipError
from medflip_core.resources import resources_dir, user_data_dir

DEFAULT_MODEL = "medflip-default"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    source: str  # "bundled" | "user"


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def default_model_dir() -> Path:
    return resources_dir() / "models" / DEFAULT_MODEL


def list_models() -> list[ModelEntry]:
    found: list[ModelEntry] = []
    bundled = resources_dir() / "models"
    for source, root in (("bundled", bundled), ("user", user_models_dir())):
        if root.is_dir():
            for path in sorted(root.iterdir()):
                if (path / MANIFEST).is_file():
                    found.append(ModelEntry(name=path.name, path=path, source=source))
    return found


def resolve_model(name_or_dir: str | Path | None) -> Path:
    """A bundle folder from a path, or a model name among the bundled and user models."""
    if name_or_dir is None:
        name_or_dir = DEFAULT_MODEL
    path = Path(name_or_dir)
    if (path / MANIFEST).is_file():
        return path
    for entry in list_models():
        if entry.name == str(name_or_dir):
            return entry.path
    names = ", ".join(e.name for e in list_models()) or "none installed"
    raise MedflipError(f"no model bundle '{name_or_dir}' (available: {names}).")
