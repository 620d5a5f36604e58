"""The bundled default model ships an int8 (dynamically quantised) ONNX text encoder: it must still say what
the torch text tower says (the weights in the same bundle), within what int8 costs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medflip_core.bundles.bundle import WEIGHTS, load_bundle
from medflip_core.inference.engine import Engine
from medflip_core.model.export import load_trained_model
from medflip_core.resources import resources_dir

pytestmark = pytest.mark.slow

SENTENCES = ["No acute cardiopulmonary abnormality.", "Right lower lobe pneumonia.",
             "Small left pleural effusion with adjacent atelectasis.", "Heart size is normal.",
             "There is a right-sided pneumothorax.", "Mild cardiomegaly.", "The lungs are clear.",
             "Patchy opacity in the left lower lobe, possibly atelectasis or pneumonia."]


def test_int8_text_encoder_agrees_with_the_torch_tower():
    folder = resources_dir() / "models" / "medflip-default"
    bundle = load_bundle(folder, verify=True)
    assert bundle.manifest["text_encoder_quantized"] is True
    model = load_trained_model(folder / WEIGHTS, bundle.manifest["model"])
    onnx_emb = Engine(folder).embed_texts(SENTENCES)
    tok = model.text_tower.tokenize(SENTENCES)
    with torch.no_grad():
        torch_emb = model.encode_text(tok["input_ids"], tok["attention_mask"]).embedding.numpy()
    cosine = (onnx_emb * torch_emb).sum(axis=1) / (np.linalg.norm(onnx_emb, axis=1) * np.linalg.norm(torch_emb, axis=1))
    assert cosine.min() > 0.97, cosine  # measured 0.98-0.998 on these sentences
    # what the app computes from text embeddings: sentence-to-sentence similarities stay close
    assert np.abs(onnx_emb @ onnx_emb.T - torch_emb @ torch_emb.T).max() < 0.1
