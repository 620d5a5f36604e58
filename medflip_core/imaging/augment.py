"""Train-only augmentation of radiographs (numpy, no torch).

Applied to the decoded image array BEFORE the one preprocessing path (medflip_core.imaging.preprocess), never inside
it: inference never sees it. Bounded on purpose: a chest X-ray stays a plausible chest X-ray (no flips, which
would move the heart to the right; crops keep most of the lungs; rotations of a few degrees).
Deterministic: the same (seed, key) gives the same augmentation, so a resumed run sees the same pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.75, 1.0)  # share of the image area kept by the random resized crop
    crop_ratio: tuple[float, float] = (0.9, 1.1)  # aspect ratio range of the crop
    max_rotation_deg: float = 7.0
    brightness: float = 0.1  # +/- shift, in units of the image's range
    contrast: float = 0.15  # factor in [1 - c, 1 + c] around the mean
    gamma: tuple[float, float] = (0.85, 1.2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> AugmentConfig:
        data = dict(data or {})
        for key in ("crop_scale", "crop_ratio", "gamma"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


WORKING_SIDE_FACTOR = 2  # augmentation works on at most this many times the model input's side


def augmentation_source(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """The grey image augmentation starts from: reduced by area averaging (aspect kept) so that its longer side
    is at most WORKING_SIDE_FACTOR x the model input's, else unchanged.

    Preprocessing shrinks the augmented image to the model input anyway; a 2,000 px radiograph cropped and
    rotated at full size costs tens of milliseconds per image for detail the model never sees, and the reduced
    copy is what the trainer's decoded-image cache can hold (trainer/image_cache.py). Images already that small
    (Kermany's 224 px, the NIH sample's 256 px at 224 px input) are augmented exactly as before.
    """
    arr = np.asarray(pixels, dtype=np.float32)
    limit = WORKING_SIDE_FACTOR * image_size
    h, w = arr.shape[:2]
    if max(h, w) <= limit:
        return arr
    scale = limit / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = Image.fromarray(np.ascontiguousarray(arr), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32)


def augment_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one image's augmentation, e.g. augment_rng(seed, step, record_index)."""
    return np.random.default_rng([seed, *key, 0xA06])


def random_resized_crop(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """A crop of scale x ratio, resized back to the input's shape."""
    h, w = img.shape[:2]
    area = h * w * rng.uniform(*cfg.crop_scale)
    ratio = np.exp(rng.uniform(np.log(cfg.crop_ratio[0]), np.log(cfg.crop_ratio[1])))
    ch = int(min(h, round(np.sqrt(area / ratio))))
    cw = int(min(w, round(np.sqrt(area * ratio))))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    crop = Image.fromarray(np.ascontiguousarray(img[top : top + ch, left : left + cw]).astype(np.float32), mode="F")
    return np.asarray(crop.resize((w, h), Image.BILINEAR), dtype=np.float32)


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation about the centre, corners filled with the image's edge median (not black: no fake borders)."""
    fill = float(np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])))
    out = Image.fromarray(img.astype(np.float32), mode="F").rotate(degrees, resample=Image.BILINEAR, fillcolor=fill)
    return np.asarray(out, dtype=np.float32)


def intensity(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Gamma, contrast and brightness on the image scaled to [0, 1], mapped back to its original range."""
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return img.astype(np.float32)
    x = (img.astype(np.float32) - lo) / (hi - lo)
    x = x ** rng.uniform(*cfg.gamma)
    x = (x - x.mean()) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + x.mean()
    x = np.clip(x + rng.uniform(-cfg.brightness, cfg.brightness), 0.0, 1.0)
    return (x * (hi - lo) + lo).astype(np.float32)


def augment_radiograph(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig | None = None) -> np.ndarray:
    """One augmented copy of a 2-D grey image (any intensity range; the range is kept), same shape."""
    cfg = cfg or AugmentConfig()
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"augment_radiograph takes a 2-D grey image, got shape {arr.shape}")
    arr = random_resized_crop(arr, rng, cfg)
    if cfg.max_rotation_deg > 0:
        arr = rotate(arr, rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    return intensity(arr, rng, cfg)
