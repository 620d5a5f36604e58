"""The masked-image-modelling decoder on real radiographs: shapes, targets, the loss counts only dropped patches,
gradients reach the image tower through the kept tokens, and a few steps on real films lower the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medflip_core.imaging import load_image
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from medflip_core.masking import sample_patch_mask
from medflip_core.model.config import ModelConfig
from medflip_core.model.image_tower import ImageTower
from medflip_core.model.mim_decoder import (
    build_decoder,
    dropped_mask,
    mim_loss,
    mim_targets,
    normalised_targets,
    patchify,
    sincos_positions,
)


@pytest.fixture(scope="module")
def real_pixels(shared_data) -> torch.Tensor:
    """8 real Kermany films (4 normal, 4 pneumonia) as 112-px model input."""
    root = shared_data / "cxr-pneumonia-kermany" / "train"
    files = [f for cls in ("NORMAL", "PNEUMONIA") for f in sorted((root / cls).iterdir())[:4]]
    pre = PreprocessConfig(image_size=112)
    return torch.from_numpy(np.stack([preprocess(load_image(f), pre) for f in files]))


def _tower_and_decoder(seed: int = 0):
    torch.manual_seed(seed)
    tower = ImageTower(ModelConfig(image_size=112))
    return tower, build_decoder(tower, 1, depth=2, width=64)


def _keep(batch: int, num_patches: int, ratio: float = 0.75, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(sample_patch_mask(batch, num_patches, ratio, seed).keep)


def test_patchify_follows_the_vit_patch_order(real_pixels):
    patches = patchify(real_pixels, 16)
    assert patches.shape == (8, 49, 256)
    # patch 8 = row 1, column 1 of the 7x7 grid
    assert torch.equal(patches[3, 8], real_pixels[3, 0, 16:32, 16:32].reshape(-1))


def test_targets_are_normalised_per_patch(real_pixels):
    targets = normalised_targets(real_pixels, 16)
    informative = patchify(real_pixels, 16).std(dim=-1) > 0.05
    assert informative.sum() > 100  # real films: most patches carry structure
    assert targets.mean(dim=-1)[informative].abs().max() < 1e-4
    assert torch.allclose(targets.std(dim=-1, unbiased=False)[informative], torch.ones(1), atol=1e-3)


def test_the_image_target_keeps_each_patch_density_and_both_stacks_the_two(real_pixels):
    """`image`: the pixels as they are, so a brighter (denser) patch has a higher target mean, which the per-patch
    normalisation of `patch` removes; `both`: the two side by side, and a decoder for it predicts twice the values."""
    image = mim_targets(real_pixels, 16, "image")
    assert torch.equal(image, patchify(real_pixels, 16))
    means = image.mean(dim=-1)
    assert float(means.max() - means.min()) > 1.0  # real films: dense and dark patches differ in their targets
    assert float(mim_targets(real_pixels, 16, "patch").mean(dim=-1).abs().max()) < 1e-4
    both = mim_targets(real_pixels, 16, "both")
    assert both.shape == (8, 49, 512)
    assert torch.equal(both[..., :256], normalised_targets(real_pixels, 16)) and torch.equal(both[..., 256:], image)
    tower = ImageTower(ModelConfig(image_size=112))
    decoder = build_decoder(tower, 1, depth=1, width=64, target="both")
    keep = _keep(8, 49)
    with torch.no_grad():
        pred = decoder(tower(real_pixels, keep).hidden, keep)
    assert pred.shape == (8, 49, 512) and decoder.shape.out_dim == 512
    for target in ("image", "both"):  # a perfect prediction scores 0, a wrong one does not
        perfect = mim_targets(real_pixels, 16, target)
        assert float(mim_loss(perfect, real_pixels, keep, 16, target)) < 1e-8
        assert float(mim_loss(perfect + 0.5, real_pixels, keep, 16, target)) == pytest.approx(0.25, rel=1e-4)
    with pytest.raises(ValueError, match="another target"):  # a `both` decoder scored against the `patch` target
        mim_loss(pred, real_pixels, keep, 16, "patch")
    with pytest.raises(ValueError, match="patch, image, both"):
        build_decoder(tower, 1, depth=1, width=64, target="pixels")


def test_positions_differ_per_patch_and_decoder_shapes():
    pos = sincos_positions((7, 7), 64)
    assert pos.shape == (49, 64) and torch.unique(pos, dim=0).shape[0] == 49
    tower, decoder = _tower_and_decoder()
    assert decoder.shape.num_patches == tower.num_patches == 49 and decoder.shape.patch_dim == 256
    assert "pos" not in decoder.state_dict()  # fixed positions are recomputed, not stored


def test_loss_counts_only_the_dropped_patches(real_pixels):
    tower, decoder = _tower_and_decoder()
    keep = _keep(8, 49)
    with torch.no_grad():
        out = tower(real_pixels, keep)
        pred = decoder(out.hidden, keep)
    assert pred.shape == (8, 49, 256)
    base = mim_loss(pred, real_pixels, keep, 16)
    dropped = dropped_mask(keep, 49).bool()
    assert int(dropped.sum()) == 8 * (49 - keep.shape[1])
    kept_changed = pred.clone()
    kept_changed[~dropped] += 5.0  # kept patches: not scored
    assert torch.allclose(mim_loss(kept_changed, real_pixels, keep, 16), base)
    dropped_changed = pred.clone()
    dropped_changed[dropped] += 5.0
    assert mim_loss(dropped_changed, real_pixels, keep, 16) > base + 1.0
    perfect = normalised_targets(real_pixels, 16)
    assert float(mim_loss(perfect, real_pixels, keep, 16)) < 1e-8


def test_gradient_reaches_the_tower_through_the_kept_tokens(real_pixels):
    tower, decoder = _tower_and_decoder()
    keep = _keep(8, 49)
    out = tower(real_pixels, keep)
    mim_loss(decoder(out.hidden, keep), real_pixels, keep, 16).backward()
    assert tower.vit.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert tower.vit.patch_embed.proj.weight.grad.abs().sum() > 0
    assert decoder.mask_token.grad.abs().sum() > 0


def test_a_few_steps_on_real_films_lower_the_reconstruction_loss(real_pixels):
    tower, decoder = _tower_and_decoder(1)
    params = [*tower.parameters(), *decoder.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3)
    losses = []
    for step in range(30):
        keep = _keep(8, 49, seed=step)
        out = tower(real_pixels, keep)
        loss = mim_loss(decoder(out.hidden, keep), real_pixels, keep, 16)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3]), losses
