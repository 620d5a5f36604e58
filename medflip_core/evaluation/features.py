"""Frozen image features of a model for the few-label protocol (evaluation.fewshot), cached per model.

A model is a bundle (embedded through its ONNX image encoder, as the app embeds), or a trainer checkpoint or run
folder (its latest checkpoint; the image tower in torch), so a run can be measured before it is exported; beside
them the raw 32x32 pixels (the one preprocessing path at 32 px) and a randomly initialised tower of a model's
shape. Features: the image embedding (`embedding`, what zero-shot and the probe use) and the mean of the
projected patch tokens (`patch_mean`); of a checkpoint or a random tower also the last hidden states before the
projection (`hidden_token`, `hidden_mean`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.atomic import atomic_path
from medflip_core.bundles.bundle import sha256_file

PIXEL_SIZE = 32
FEATURES = ("embedding", "patch_mean")
# the tower's last hidden states before the projection (class token; mean of the patch tokens): a checkpoint's or a
# random tower's only, since a bundle's ONNX image encoder outputs the embedding and the projected tokens
HIDDEN_FEATURES = ("hidden_token", "hidden_mean")
Extractor = Callable[[list[Path]], dict[str, np.ndarray]]  # paths -> {feature: (n, d)}


@dataclass
class FeatureSource:
    """What embeds images: a model (bundle / checkpoint), a random tower, or the raw pixels."""

    label: str  # printed
    key: str  # cache file name (content-derived)
    features: tuple[str, ...]
    extract: Extractor


class FeatureCache:
    """{path: features} of one source in one .npz (no pickle: an array of path strings and float32 arrays)."""

    def __init__(self, folder: Path | None, key: str) -> None:
        self.file = folder / f"{key}.npz" if folder is not None else None
        self.rows: dict[str, dict[str, np.ndarray]] = {}
        if self.file is not None and self.file.is_file():
            with np.load(self.file, allow_pickle=False) as data:
                names = [str(p) for p in data["paths"]]
                feats = {k[5:]: data[k] for k in data.files if k.startswith("feat_")}
                for i, name in enumerate(names):
                    self.rows[name] = {k: v[i] for k, v in feats.items()}

    def missing(self, paths: Sequence[Path], features: Sequence[str] = ()) -> list[Path]:
        """Paths not cached, or cached without one of `features` (a cache written before that feature existed)."""
        return [p for p in dict.fromkeys(paths)
                if str(p) not in self.rows or any(f not in self.rows[str(p)] for f in features)]

    def add(self, paths: Sequence[Path], feats: dict[str, np.ndarray]) -> None:
        for i, p in enumerate(paths):
            self.rows[str(p)] = {k: np.asarray(v[i], dtype=np.float32) for k, v in feats.items()}

    def save(self) -> None:
        if self.file is None or not self.rows:
            return
        names = sorted(self.rows)
        # one array per feature, so only the features every row has (a cache written before a feature existed
        # holds rows without it; such a row's feature is extracted again when asked: `missing`)
        kinds = sorted(set.intersection(*(set(self.rows[n]) for n in names)))
        arrays = {"paths": np.array(names)}
        arrays.update({f"feat_{k}": np.stack([self.rows[n][k] for n in names]) for k in kinds})
        with atomic_path(self.file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def matrix(self, paths: Sequence[Path], feature: str) -> np.ndarray:
        return np.stack([self.rows[str(p)][feature] for p in paths])


def _decode(paths: Sequence[Path], size: int, pre_dict: dict | None = None) -> np.ndarray:
    from medflip_core.imaging import load_image
    from medflip_core.imaging.preprocess import PreprocessConfig, preprocess

    pre = PreprocessConfig.from_dict({**(pre_dict or {}), "image_size": size})
    return np.stack([preprocess(load_image(p), pre) for p in paths])


def pixel_source() -> FeatureSource:
    def extract(paths: list[Path]) -> dict[str, np.ndarray]:
        return {"pixels": _decode(paths, PIXEL_SIZE).reshape(len(paths), -1)}

    return FeatureSource(f"raw {PIXEL_SIZE}x{PIXEL_SIZE} pixels", f"pixels{PIXEL_SIZE}", ("pixels",), extract)


def _torch_tower_source(label: str, key: str, model_config: dict, preprocess_dict: dict,
                        state: dict | None, seed: int, threads: int | None) -> FeatureSource:
    """The image tower in torch: trained weights (`state`: the model's state dict), or random at `seed`."""

    def extract(paths: list[Path]) -> dict[str, np.ndarray]:
        import torch

        from medflip_core.model.config import ModelConfig
        from medflip_core.model.image_tower import ImageTower

        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        tower = ImageTower(ModelConfig.from_dict(model_config))
        if state is not None:
            tower.load_state_dict({k[len("image_tower."):]: v for k, v in state.items()
                                   if k.startswith("image_tower.")}, strict=True)
        tower.eval()
        size = int(model_config.get("image_size", 224))
        prefix = tower.vit.num_prefix_tokens
        rows: dict[str, list[np.ndarray]] = {name: [] for name in (*FEATURES, *HIDDEN_FEATURES)}
        with torch.no_grad():
            for start in range(0, len(paths), 32):
                pixels = torch.from_numpy(_decode(paths[start:start + 32], size, preprocess_dict))
                out = tower(pixels)
                rows["embedding"].append(out.embedding.numpy())
                rows["patch_mean"].append(out.tokens.mean(dim=1).numpy())
                rows["hidden_token"].append(out.hidden[:, 0].numpy())
                rows["hidden_mean"].append(out.hidden[:, prefix:].mean(dim=1).numpy())
        return {name: np.concatenate(r) for name, r in rows.items()}

    return FeatureSource(label, key, (*FEATURES, *HIDDEN_FEATURES), extract)


def model_source(spec: str, threads: int | None = None) -> tuple[FeatureSource, dict, dict]:
    """(source, model config, preprocessing) of a bundle (name or folder), a checkpoint, or a run folder."""
    from medflip_core.bundles.checkpoint_layout import MODEL_FILE, STATE_FILE, latest_checkpoint

    path = Path(spec)
    ckpt_dir = None
    if (path / STATE_FILE).is_file():
        ckpt_dir = path
    elif path.is_dir() and (latest := latest_checkpoint(path)) is not None:
        ckpt_dir = latest.path
    if ckpt_dir is not None:
        from safetensors.torch import load_file

        state = json.loads((ckpt_dir / STATE_FILE).read_text(encoding="utf-8"))
        weights = ckpt_dir / MODEL_FILE
        key = "ckpt-" + sha256_file(weights)[:24]
        source = _torch_tower_source(f"{ckpt_dir.parent.parent.name}/{ckpt_dir.name}", key, state["model_config"],
                                     state["preprocess"], load_file(str(weights)), 0, threads)
        return source, state["model_config"], state["preprocess"]
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.finetune.embedding_cache import model_key
    from medflip_core.inference.engine import Engine

    folder = resolve_model(spec)
    engine = Engine(folder, threads=threads, prefer_gpu=False)
    manifest = engine.bundle.manifest

    def extract(paths: list[Path]) -> dict[str, np.ndarray]:
        from medflip_core.imaging import load_image

        emb, mean = [], []
        for start in range(0, len(paths), 16):
            out = engine.embed_images([load_image(p) for p in paths[start:start + 16]])
            emb.append(out.embedding)
            mean.append(out.patch_tokens.mean(axis=1))
        return {"embedding": np.concatenate(emb), "patch_mean": np.concatenate(mean)}

    label = f"{manifest.get('name', folder.name)} (step {(manifest.get('provenance') or {}).get('checkpoint_step')})"
    return FeatureSource(label, "bundle-" + model_key(engine.bundle), FEATURES, extract), manifest["model"], \
        manifest["preprocess"]


def random_source(model_config: dict, preprocess_dict: dict, seed: int, threads: int | None) -> FeatureSource:
    blob = json.dumps({"model": model_config, "preprocess": preprocess_dict, "seed": seed}, sort_keys=True)
    key = "random-" + hashlib.sha256(blob.encode()).hexdigest()[:24]
    label = f"random init ({model_config.get('vision')} at {model_config.get('image_size')} px, seed {seed})"
    return _torch_tower_source(label, key, model_config, preprocess_dict, None, seed, threads)


def embed(source: FeatureSource, paths: list[Path], cache_dir: Path | None) -> tuple[FeatureCache, int]:
    """The source's features of every path, from the cache where it has them; (cache, images embedded now)."""
    cache = FeatureCache(cache_dir, source.key)
    todo = cache.missing(paths, source.features)
    for start in range(0, len(todo), 256):  # saved as it goes: an interrupted run keeps what it embedded
        chunk = todo[start:start + 256]
        cache.add(chunk, source.extract(chunk))
        cache.save()
    return cache, len(todo)


def default_cache_dir() -> Path:
    from medflip_core.resources import user_data_dir

    return user_data_dir() / "cache" / "fewshot"
