"""The real towers on CPU: ViT-Tiny with masking, the packaged MiniLM, safetensors round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess_batch
from medflip_core.masking import sample_patch_mask
from medflip_core.model.clip_model import MedFlipModel, build_model
from medflip_core.model.config import ModelConfig, default_text_model_path
from medflip_core.model.image_tower import mask_for_batch


@pytest.fixture(scope="module")
def model() -> MedFlipModel:
    torch.manual_seed(0)
    return build_model(ModelConfig()).eval()


@pytest.fixture(scope="module")
def pixels(shared_data) -> torch.Tensor:
    files = [shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm",
             shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"]
    return torch.from_numpy(preprocess_batch([load_image(f) for f in files], PreprocessConfig()))


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
def test_tower_sees_exactly_the_kept_patches(model, pixels, ratio):
    keep = mask_for_batch(2, model.image_tower.num_patches, ratio, 0)
    out = model.image_tower(pixels, keep)
    assert out.tokens.shape == (2, round(196 * (1 - ratio)), 256)
    assert torch.equal(out.keep, keep)
    assert torch.allclose(out.embedding.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_masked_forward_deterministic_and_differs_from_unmasked(model, pixels):
    with torch.no_grad():
        a = model.image_tower(pixels, mask_for_batch(2, 196, 0.75, 5)).embedding
        b = model.image_tower(pixels, mask_for_batch(2, 196, 0.75, 5)).embedding
        c = model.image_tower(pixels, mask_for_batch(2, 196, 0.75, 6)).embedding
        full = model.image_tower(pixels).embedding
        all_kept = model.image_tower(pixels, torch.arange(196).repeat(2, 1)).embedding
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, full, atol=1e-3)  # a masked pass sees a quarter of the patches: not the same
    assert torch.allclose(full, all_kept, atol=1e-6)
    assert mask_for_batch(2, 196, 0.0, 0) is None


def test_kept_patch_stem_equals_the_full_stem_then_gather(pixels):
    """A masked step embeds only the kept patches; outputs and gradients must be those of the timm stem run on
    every patch followed by the gather (the path other ViT stems take)."""
    torch.manual_seed(3)
    tower = build_model(ModelConfig()).image_tower.train()
    assert tower._embeds_kept_only()
    keep = mask_for_batch(2, 196, 0.75, 4)
    results = []
    for kept_only in (True, False):
        tower.zero_grad(set_to_none=True)
        tower._embeds_kept_only = (lambda k=kept_only: k)
        out = tower(pixels, keep)
        (out.embedding.pow(3).sum() + out.tokens[..., :8].sum()).backward()
        results.append((out.tokens.detach(), {n: p.grad.clone() for n, p in tower.named_parameters()
                                               if p.grad is not None}))
    del tower._embeds_kept_only
    (tok_a, grad_a), (tok_b, grad_b) = results
    assert torch.allclose(tok_a, tok_b, atol=1e-6)
    assert grad_a.keys() == grad_b.keys()
    assert {"vit.patch_embed.proj.weight", "vit.pos_embed", "vit.cls_token"} <= grad_a.keys()
    for name in grad_a:
        assert torch.allclose(grad_a[name], grad_b[name], rtol=1e-4, atol=1e-6), name
    # position embeddings of dropped patches get no gradient: the stem really skipped them
    dropped = sorted(set(range(196)) - set(keep.flatten().tolist()))
    assert torch.count_nonzero(grad_a["vit.pos_embed"][0, 1:][dropped]) == 0


def test_a_hybrid_stem_takes_the_full_path_when_masked():
    """A CNN before the patch projection (timm's HybridEmbed) must not be skipped by the kept-patch stem."""
    from medflip_core.model.image_tower import ImageTower

    tower = ImageTower(ModelConfig(vision="vit_tiny_r_s16_p8_224")).eval()
    assert not tower._embeds_kept_only()
    with torch.no_grad():
        out = tower(torch.randn(2, 1, 224, 224), mask_for_batch(2, tower.num_patches, 0.75, 0))
    assert out.tokens.shape == (2, round(tower.num_patches * 0.25), 256)


def test_kept_patch_stem_rejects_another_image_size(model):
    with pytest.raises(ValueError, match="224"):
        model.image_tower(torch.zeros(1, 1, 192, 192), mask_for_batch(1, 196, 0.75, 0))


def test_mask_uses_the_shared_algorithm(model):
    keep = mask_for_batch(3, 196, 0.75, 11).numpy()
    assert np.array_equal(keep, sample_patch_mask(3, 196, 0.75, 11).keep)


def test_packaged_minilm_is_really_pretrained(model):
    tower = model.text_tower
    sentences = ["No pleural effusion.", "There is no effusion.", "A pacemaker is in place."]
    tok = tower.tokenize(sentences)
    with torch.no_grad():
        pooled, _ = tower.pooled(tok["input_ids"], tok["attention_mask"])
    sim = F.normalize(pooled, dim=-1) @ F.normalize(pooled, dim=-1).T
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert (default_text_model_path() / "model.safetensors").is_file()


def test_text_trainable_modes(model):
    tower = model.text_tower
    counts = {}
    for mode in ("frozen", "partial", "full"):
        tower.set_trainable(mode)
        counts[mode] = sum(p.numel() for p in tower.parameters() if p.requires_grad)
    assert counts["frozen"] == tower.proj.weight.numel()
    assert counts["frozen"] < counts["partial"] < counts["full"]
    with pytest.raises(MedflipError):
        tower.set_trainable("half")


@pytest.mark.parametrize("mode", ["frozen", "partial", "full"])
def test_every_trainable_text_parameter_gets_a_gradient(model, mode):
    """What DDP needs (no unused trainable parameters): one backward reaches every trainable tensor."""
    tower = model.text_tower
    tower.set_trainable(mode)
    tower.zero_grad(set_to_none=True)
    tok = tower.tokenize(["Small left pleural effusion.", "The lungs are clear."])
    out = tower(tok["input_ids"], tok["attention_mask"])
    (out.embedding.sum() + out.tokens.sum()).backward()
    missing = [n for n, p in tower.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    tower.zero_grad(set_to_none=True)


def test_safetensors_round_trip(model, pixels, tmp_path):
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    torch.manual_seed(123)
    fresh = build_model(ModelConfig()).eval()
    fresh.load_weights(path)
    with torch.no_grad():
        assert torch.equal(fresh.image_tower(pixels).embedding, model.image_tower(pixels).embedding)


def test_weights_of_another_config_rejected(model, tmp_path):
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    bigger = build_model(ModelConfig(embed_dim=128))
    with pytest.raises(MedflipError, match="do not fit"):
        bigger.load_weights(path)


def test_missing_text_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MedflipError, match="not a local Hugging Face model folder"):
        build_model(ModelConfig(text_model=str(tmp_path)))
