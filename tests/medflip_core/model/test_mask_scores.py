"""The trainer's mask scores on the real default model: equal to the ONNX engine's (the mask view's), and
`attention` really masks more of the text-similar patches than `random` does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medflip_core.bundles.model_store import default_model_dir
from medflip_core.imaging import load_image
from medflip_core.imaging.preprocess import preprocess_batch
from medflip_core.inference.engine import Engine
from medflip_core.masking import integrity_scores, make_patch_mask, patch_text_scores, sample_patch_mask
from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.mask_scores import mask_scores


@pytest.fixture(scope="module")
def default_pair():
    """The bundled default model twice: torch (as the trainer runs it) and ONNX (as the mask view runs it)."""
    engine = Engine(default_model_dir(), threads=1, prefer_gpu=False)
    model = build_model(ModelConfig.from_dict(engine.bundle.manifest["model"]))
    model.load_weights(default_model_dir() / "weights.safetensors")
    model.train()  # the trainer's state: the scoring pass must switch to eval itself and switch back
    return model, engine


@pytest.fixture(scope="module")
def pneumonia_pixels(shared_data, default_pair):
    _, engine = default_pair
    folder = shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA"
    files = sorted(folder.iterdir())[:3]
    return preprocess_batch([load_image(f) for f in files], engine.pre)


FINDINGS = ["Pneumonia", "Lung Opacity"]


def _texts(engine: Engine) -> list[str]:
    return [t for texts in engine.prompt_texts(FINDINGS).values() for t in texts]


def test_trainer_attention_scores_equal_the_engines(default_pair, pneumonia_pixels):
    model, engine = default_pair
    texts = _texts(engine)
    tokens = model.text_tower.tokenize(texts)
    trainer = mask_scores(model, "attention", torch.from_numpy(pneumonia_pixels), tokens["input_ids"],
                          tokens["attention_mask"])
    assert model.training and model.image_tower.vit.training  # the training modes are restored
    view = patch_text_scores(engine.embed_pixels(pneumonia_pixels).patch_tokens, engine.embed_texts(texts))
    assert trainer.shape == view.shape == (3, 196)
    # the bundle's text encoder is int8-quantized (manifest: text_encoder_quantized), its image encoder is not:
    # the scores agree up to that rounding, and so do the patches they rank first
    assert engine.bundle.manifest.get("text_encoder_quantized")
    np.testing.assert_allclose(trainer, view, atol=0.05)
    guided_n = round(0.5 * (196 - 49))
    for b in range(3):
        ranks = [np.argsort(np.argsort(-s[b])) for s in (trainer, view)]
        assert np.corrcoef(*ranks)[0, 1] > 0.95
        top = [set(np.argsort(-s[b])[:guided_n].tolist()) for s in (trainer, view)]
        assert len(top[0] & top[1]) >= 0.85 * guided_n


def test_trainer_integrity_scores_are_the_views(default_pair, pneumonia_pixels):
    model, _ = default_pair
    trainer = mask_scores(model, "integrity", torch.from_numpy(pneumonia_pixels))
    np.testing.assert_array_equal(trainer, integrity_scores(pneumonia_pixels, 16))
    assert mask_scores(model, "random", torch.from_numpy(pneumonia_pixels)) is None


def test_attention_masks_more_text_similar_patches_than_random(default_pair, pneumonia_pixels):
    """Measured on real pneumonia images with the real default model: the text-similar patches are the top
    quarter of the GUI's heat map (the prompt-ensembled class embedding of each finding), a different
    reading of the text than the max over single prompts that drives the mask."""
    model, engine = default_pair
    texts = _texts(engine)
    tokens = model.text_tower.tokenize(texts)
    scores = mask_scores(model, "attention", torch.from_numpy(pneumonia_pixels), tokens["input_ids"],
                         tokens["attention_mask"])
    patch_tokens = engine.embed_pixels(pneumonia_pixels).patch_tokens
    masked_share = {"attention": [], "random": []}
    for b in range(len(pneumonia_pixels)):
        heat = np.max([engine.similarity_map(patch_tokens[b], label).ravel() for label in FINDINGS], axis=0)
        similar = np.argsort(-heat)[:49]
        for seed in range(20):
            for name, mask in (("attention", make_patch_mask("attention", 1, 196, 0.75, seed, scores[b:b + 1])),
                               ("random", sample_patch_mask(1, 196, 0.75, seed))):
                masked_share[name].append(1.0 - np.isin(similar, mask.keep[0]).mean())
    attention, random = np.mean(masked_share["attention"]), np.mean(masked_share["random"])
    print(f"share of the top-quarter text-similar patches masked: attention {attention:.3f}, random {random:.3f}")
    assert random == pytest.approx(0.75, abs=0.05)
    assert attention > random + 0.1


def test_attention_without_text_is_a_clear_error(default_pair, pneumonia_pixels):
    model, _ = default_pair
    with pytest.raises(ValueError, match="needs the batch's text"):
        mask_scores(model, "attention", torch.from_numpy(pneumonia_pixels))
    with pytest.raises(ValueError, match="unknown mask strategy"):
        mask_scores(model, "semantic", torch.from_numpy(pneumonia_pixels))


def test_scores_from_the_text_cache_equal_the_full_text_pass(default_pair, pneumonia_pixels):
    model, engine = default_pair
    tokens = model.text_tower.tokenize(_texts(engine))
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    model.eval()  # frozen layers hold no dropout in the cache
    try:
        frozen = model.text_tower.frozen_states(ids, mask)
    finally:
        model.train()
    pixels = torch.from_numpy(pneumonia_pixels)
    np.testing.assert_allclose(mask_scores(model, "attention", pixels, ids, mask, frozen),
                               mask_scores(model, "attention", pixels, ids, mask), atol=1e-5)
