"""The one preprocessing path from a Radiograph to model input, shared by training, export and inference.

Aspect-preserving resize (longer side -> image_size, area averaging when shrinking), centred padding,
then (x - mean) / std. Parameters travel in the model bundle's manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from medflip_core.imaging.radiograph import Radiograph


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int = 224
    mean: float = 0.5
    std: float = 0.25
    pad_value: float = 0.0  # in display space [0, 1], before normalisation: black, like collimation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        return cls(**{k: data[k] for k in ("image_size", "mean", "std", "pad_value") if k in data})


def letterbox_geometry(height: int, width: int, image_size: int) -> tuple[float, int, int, int, int]:
    """(scale, new_h, new_w, top, left): where the image sits inside the square model input."""
    scale = image_size / max(height, width)
    new_h = max(1, min(image_size, int(round(height * scale))))
    new_w = max(1, min(image_size, int(round(width * scale))))
    top = (image_size - new_h) // 2
    left = (image_size - new_w) // 2
    return scale, new_h, new_w, top, left


def _resize(pixels: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    if pixels.shape == (new_h, new_w):
        return pixels
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    shrinking = new_h < pixels.shape[0] or new_w < pixels.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(image.resize((new_w, new_h), method), dtype=np.float32)


def preprocess(image: Radiograph | np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """float32 (1, S, S) model input from a Radiograph (its display pixels) or a 2-D [0, 1] array."""
    pixels = image.pixels if isinstance(image, Radiograph) else np.asarray(image, dtype=np.float32)
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {pixels.shape}")
    size = cfg.image_size
    _, new_h, new_w, top, left = letterbox_geometry(pixels.shape[0], pixels.shape[1], size)
    canvas = np.full((size, size), cfg.pad_value, dtype=np.float32)
    canvas[top : top + new_h, left : left + new_w] = np.clip(_resize(pixels, new_h, new_w), 0.0, 1.0)
    return ((canvas - cfg.mean) / cfg.std)[None]


def preprocess_batch(images: Sequence[Radiograph | np.ndarray], cfg: PreprocessConfig) -> np.ndarray:
    """float32 (B, 1, S, S)."""
    return np.stack([preprocess(im, cfg) for im in images]) if images else np.zeros(
        (0, 1, cfg.image_size, cfg.image_size), np.float32
    )
