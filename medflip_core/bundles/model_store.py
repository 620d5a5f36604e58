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


def _manifest(path: Path) -> dict:
    import json

    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_classifier(path: str | Path) -> bool:
    """A classifier bundle (a head on a base model's tower), not a CLIP model."""
    return "classifier" in _manifest(Path(path))


def clip_base_of(path: str | Path) -> Path | None:
    """The CLIP model a bundle fine-tunes from: itself for a CLIP model; for a classifier, its recorded base (by
    path, else by name among the installed models), following a chain of classifiers; None when not found."""
    path = Path(path)
    for _ in range(8):  # a classifier made (before the refusal) from another classifier: follow its chain
        manifest = _manifest(path)
        if not manifest:
            return None
        if "classifier" not in manifest:
            return path
        base = manifest.get("base_model") or {}
        recorded = Path(str(base.get("path", "")))
        if base.get("path") and (recorded / MANIFEST).is_file():
            path = recorded
            continue
        named = next((e.path for e in list_models() if e.name == base.get("name")), None)
        if named is None:
            return None
        path = named
    return None


def resolve_finetune_base(name_or_dir: str | Path | None) -> Path:
    """The CLIP model a fine-tuning starts from; a classifier is refused with a sentence naming its base."""
    path = resolve_model(name_or_dir)
    if not is_classifier(path):
        return path
    base = clip_base_of(path)
    hint = (f"choose its base model, {base.name}, instead (--base {base})" if base is not None
            else "choose the CLIP model it came from")
    raise MedflipError(f"{path.name} is a classifier, not a CLIP model: fine-tuning starts from a CLIP model's "
                       f"image tower, so a classifier cannot be its base; {hint}.")


def list_clip_models() -> list[ModelEntry]:
    """The installed models fine-tuning can start from (no classifiers)."""
    return [e for e in list_models() if not is_classifier(e.path)]
