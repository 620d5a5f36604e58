"""Model bundles: a folder with manifest.json, ONNX encoders, tokenizer files, optional sentence bank,
and the torch weights as safetensors. No torch here: the GUI reads bundles too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medflip_core.atomic import write_text_atomic
from medflip_core.errors import MedflipError

FORMAT = "medflip-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
IMAGE_ONNX = "image_encoder.onnx"
TEXT_ONNX = "text_encoder.onnx"
WEIGHTS = "weights.safetensors"
TOKENIZER_DIR = "tokenizer"
BANK_NPZ = "sentence_bank.npz"
OOD_REFERENCE_NPZ = "ood_reference.npz"  # chest-film embeddings for the out-of-distribution check
MODEL_CARD = "MODEL_CARD.md"
KIND_CLIP = "clip"  # image + text encoders: zero-shot, retrieval
KIND_CLASSIFIER = "classifier"  # image encoder + head (and, from a probe, the base model's text side too)
INTENDED_USE = (
    "Research use only. Not a medical device; not for diagnosis, triage or any clinical decision."
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    @property
    def embed_dim(self) -> int:
        return int(self.manifest["embedding_dim"])

    @property
    def logit_scale(self) -> float:
        return float(self.manifest["logit_scale"])

    @property
    def preprocess(self) -> dict[str, Any]:
        return dict(self.manifest["preprocess"])

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", KIND_CLIP))

    @property
    def is_classifier(self) -> bool:
        return self.kind == KIND_CLASSIFIER

    @property
    def default_labels(self) -> list[str]:
        return list(self.manifest.get("default_labels", []))

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.manifest.get("files", {})

    def model_card(self) -> str:
        card = self.path / MODEL_CARD
        return card.read_text(encoding="utf-8") if card.is_file() else INTENDED_USE


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle's manifest; with `verify`, check every listed file's size and sha256."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise MedflipError(f"{path} is not a MedFLIP model bundle (no {MANIFEST}).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MedflipError(f"the manifest of {path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise MedflipError(f"{manifest_path} is not a {FORMAT} manifest.")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise MedflipError(
            f"{path} uses bundle format {manifest.get('format_version')}; this MedFLIP reads up to {FORMAT_VERSION}."
        )
    if verify:
        verify_files(path, manifest)
    return Bundle(path=path, manifest=manifest)


def verify_files(path: Path, manifest: dict[str, Any]) -> None:
    for name, info in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise MedflipError(f"model bundle {path.name}: file {name} is missing.")
        if os.path.getsize(file) != int(info["bytes"]) or sha256_file(file) != info["sha256"]:
            raise MedflipError(
                f"model bundle {path.name}: {name} does not match its recorded checksum (damaged or altered)."
            )


def file_entries(path: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    return {n: {"sha256": sha256_file(path / n), "bytes": os.path.getsize(path / n)} for n in sorted(names)}


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest last and atomically: a bundle without one is never half-valid."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "intended_use": INTENDED_USE, **manifest}
    write_text_atomic(path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))


def bundle_files(path: Path) -> list[str]:
    """Every file of a bundle folder except the manifest, as relative POSIX paths."""
    return sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def refresh_file_list(path: str | Path) -> None:
    """Re-hash every file of a bundle (after adding e.g. its model card) and rewrite the manifest."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = file_entries(path, bundle_files(path))
    write_manifest(path, manifest)
