"""The shipped v3 bundle (medflip-default, exported before masked image modelling existed) still loads and
scores: through ONNX Runtime, and into the torch model whose image tower now also returns its hidden states."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medflip_core.bundles.bundle import MANIFEST
from medflip_core.bundles.model_store import default_model_dir
from medflip_core.imaging import load_image
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from medflip_core.inference.engine import Engine
from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig


def test_v3_bundle_loads_and_scores_in_onnx_and_torch(shared_data):
    bundle = default_model_dir()
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["provenance"]["checkpoint_step"] == 3309  # v3
    engine = Engine(bundle, threads=2)
    root = shared_data / "cxr-pneumonia-kermany" / "train"
    files = [sorted((root / "NORMAL").iterdir())[0], sorted((root / "PNEUMONIA").iterdir())[0]]
    images = [load_image(f) for f in files]
    onnx_emb = engine.embed_images(images).embedding
    for emb in onnx_emb:
        probs = engine.classify(emb, ["No Finding", "Pneumonia"])
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    model = build_model(ModelConfig.from_dict(manifest["model"]))
    model.load_weights(bundle)  # strict: no decoder tensor expected, none missing
    model.eval()
    pre = PreprocessConfig.from_dict(manifest["preprocess"])
    pixels = torch.from_numpy(np.stack([preprocess(im, pre) for im in images]))
    with torch.no_grad():
        out = model.encode_image(pixels)
    assert out.hidden is not None and out.hidden.shape == (2, 197, 192)
    cos = (out.embedding.numpy() * onnx_emb).sum(axis=1)
    assert cos.min() > 0.99  # ONNX vs torch (float16 weights) of the same tower
