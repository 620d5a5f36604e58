"""Image embeddings cached on disk, keyed by file content hash + model hash.

Layout: <root>/<model key>/<shard>.npz, each shard written atomically with `keys` (sha256 of the file's bytes),
`embeddings` (n, D) float32, the keys of unreadable files with their messages, and (shards written since the
exposure check) `exposure_keys` with each film's two exposure numbers (imaging.exposure) under `exposure`. A job
writes a shard every batch, so a killed job loses at most one batch and a rerun starts where it stopped; `compact`
merges the shards into one file at the end. A renamed or moved file keeps its key; an edited file gets a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np

from medflip_core.atomic import atomic_path
from medflip_core.bundles.bundle import IMAGE_ONNX, Bundle, sha256_file

content_hash = sha256_file  # an image's cache key is the sha256 of its bytes, as a bundle file's checksum


def model_key(bundle: Bundle) -> str:
    """What decides an image's embedding: the image encoder's bytes and the preprocessing parameters."""
    info = bundle.manifest.get("files", {}).get(IMAGE_ONNX, {})
    onnx_sha = info.get("sha256") or content_hash(bundle.file(IMAGE_ONNX))
    blob = json.dumps({"image_encoder": onnx_sha, "preprocess": bundle.preprocess}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class EmbeddingCache:
    def __init__(self, root: str | Path, key: str) -> None:
        self.dir = Path(root) / key
        self.embeddings: dict[str, np.ndarray] = {}
        self.failed: dict[str, str] = {}
        self.exposure: dict[str, np.ndarray] = {}  # key -> (2,) mean and spread of the film's model input
        self._load()

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("*.npz")) if self.dir.is_dir() else []

    def _load(self) -> None:
        for shard in self._shards():
            try:
                with np.load(shard, allow_pickle=False) as data:
                    self.embeddings.update(zip(data["keys"].tolist(), data["embeddings"], strict=True))
                    self.failed.update(zip(data["failed_keys"].tolist(), data["failed_messages"].tolist(),
                                           strict=True))
                    if "exposure_keys" in data.files:
                        self.exposure.update(zip(data["exposure_keys"].tolist(), data["exposure"], strict=True))
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard only costs its images being embedded again

    def __contains__(self, key: str) -> bool:
        return key in self.embeddings or key in self.failed

    def add(self, embeddings: dict[str, np.ndarray], failed: dict[str, str] | None = None,
            exposure: dict[str, np.ndarray] | None = None) -> None:
        """Store one batch as a new shard (atomically) and in memory."""
        failed, exposure = failed or {}, exposure or {}
        if not embeddings and not failed and not exposure:
            return
        self._write(self.dir / f"shard-{uuid.uuid4().hex}.npz", embeddings, failed, exposure)
        self.embeddings.update(embeddings)
        self.failed.update(failed)
        self.exposure.update(exposure)

    def _write(self, target: Path, embeddings: dict[str, np.ndarray], failed: dict[str, str],
               exposure: dict[str, np.ndarray]) -> None:
        keys = list(embeddings)
        dim = next(iter(embeddings.values())).shape[-1] if embeddings else 0
        emb = np.stack([embeddings[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dim), np.float32)
        exp = (np.stack([exposure[k] for k in exposure]).astype(np.float32) if exposure
               else np.zeros((0, 2), np.float32))
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="U64"), embeddings=emb,
                     failed_keys=np.array(list(failed), dtype="U64"),
                     failed_messages=np.array(list(failed.values()), dtype=str),
                     exposure_keys=np.array(list(exposure), dtype="U64"), exposure=exp)

    def compact(self) -> None:
        """Merge every shard into one (written before the old shards are removed: a crash leaves duplicates,
        which load to the same entries, never a loss)."""
        shards = self._shards()
        if len(shards) <= 1:
            return
        self._write(self.dir / f"merged-{uuid.uuid4().hex}.npz", self.embeddings, self.failed, self.exposure)
        for shard in shards:
            with contextlib.suppress(OSError):
                os.unlink(shard)
