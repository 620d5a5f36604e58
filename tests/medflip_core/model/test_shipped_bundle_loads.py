"""The shipped bundle (medflip-default) loads and scores through ONNX Runtime and into the torch model, whose
image tower also returns its hidden states; it carries no reconstruction decoder (training-only).

v3 (exported before masked image modelling existed) passed this test under the MIM code until it was replaced by v4
(trained with a decoder): both bundles have the same manifest format and model configuration, so an older bundle
and the shipped one load by the same path (strict: no decoder tensor expected, none missing)."""

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


def test_shipped_bundle_loads_and_scores_in_onnx_and_torch_without_a_decoder(shared_data):
    bundle = default_model_dir()
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["provenance"]["previous_model"]["checkpoint_step"] == 3309  # v4, which replaced v3
    assert manifest["provenance"]["training_config"]["mim_weight"] > 0  # trained with a decoder...
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
    assert not any("decoder" in name for name in model.state_dict())  # ...which the export left out
    model.eval()
    pre = PreprocessConfig.from_dict(manifest["preprocess"])
    pixels = torch.from_numpy(np.stack([preprocess(im, pre) for im in images]))
    with torch.no_grad():
        out = model.encode_image(pixels)
    assert out.hidden is not None and out.hidden.shape == (2, 197, 192)
    cos = (out.embedding.numpy() * onnx_emb).sum(axis=1)
    assert cos.min() > 0.99  # ONNX vs torch (float16 weights) of the same tower
