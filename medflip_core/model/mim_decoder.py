"""Masked image modelling: a light decoder that reconstructs the patches the image tower never saw.

Training-only. The image tower encodes the kept patches of a masked step (the same forward pass the MedFLIP
loss uses, so the tower's cost does not grow); this decoder takes the tower's final hidden states of those
patches, puts a learnt mask token at every dropped position, adds fixed 2-D sine-cosine position embeddings
to all of them, runs a few narrow transformer blocks over the whole grid and predicts each dropped patch's
pixels. The loss is the mean squared error over the dropped patches only (our reading of MAE's reconstruction
objective; the choice of WHICH patches are dropped is the mask strategy's: medflip_core.masking,
docs/method-notes.md). What a patch's target is (`MIM_TARGETS`):
- `patch`: its model-input pixels normalised by the patch's own mean and standard deviation (MAE's choice):
  texture only, since each patch's mean and contrast are removed;
- `image`: its model-input pixels as they are (normalised once per image by the preprocessing): texture AND the
  patch's density relative to the film, which is what a radiograph's findings are made of (an opacity is a
  brighter region);
- `both`: the two stacked, the head predicting twice the values, each half weighing the same.

The decoder's weights live beside a checkpoint's model weights in their own file (`DECODER_FILE`), so a run
resumes with them while `MedFlipModel.load_weights`, the export and the bundle never see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn

DECODER_FILE = "mim_decoder.safetensors"  # in a checkpoint folder, beside model.safetensors
TARGET_EPS = 1e-6  # added to a patch's pixel variance before normalising (flat padding patches)
MIM_TARGETS = ("patch", "image", "both")


@dataclass(frozen=True)
class DecoderShape:
    """What the decoder must know of the image tower and how big it is."""

    encoder_width: int  # the tower's hidden size (timm num_features)
    grid: tuple[int, int]  # patch rows and columns
    patch_size: int
    in_chans: int
    depth: int = 2
    width: int = 128
    heads: int = 4
    target: str = "patch"  # one of MIM_TARGETS

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def patch_dim(self) -> int:
        return self.patch_size * self.patch_size * self.in_chans

    @property
    def out_dim(self) -> int:
        """Values predicted per patch: the patch's pixels, twice for the `both` target."""
        return self.patch_dim * (2 if self.target == "both" else 1)


def sincos_positions(grid: tuple[int, int], width: int) -> torch.Tensor:
    """(rows * cols, width) fixed 2-D sine-cosine embeddings, row-major like the ViT's patch order: half of the
    channels encode the row, half the column, each half as sines and cosines of geometric frequencies."""
    if width % 4:
        raise ValueError(f"the decoder width must be a multiple of 4 for 2-D sine-cosine positions, got {width}")
    quarter = width // 4
    freqs = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    rows, cols = torch.meshgrid(torch.arange(grid[0], dtype=torch.float64),
                                torch.arange(grid[1], dtype=torch.float64), indexing="ij")
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angles = coord[:, None] * freqs[None, :]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).float()


class DecoderBlock(nn.Module):
    """Pre-norm transformer block: self-attention over all grid positions, then an MLP (ratio 4)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the decoder width {width} is not a multiple of its {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, 4 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, w)
        x = x + self.out(attended)
        return x + self.mlp(self.norm2(x))


class MimDecoder(nn.Module):
    """Encoder hidden states of the kept patches (B, prefix + K, E) + kept indices (B, K) -> pixel predictions
    for every patch (B, L, out_dim); only the dropped positions' predictions are scored (`mim_loss`)."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Linear(shape.encoder_width, shape.width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, shape.width))
        self.register_buffer("pos", sincos_positions(shape.grid, shape.width)[None], persistent=False)
        self.blocks = nn.ModuleList(DecoderBlock(shape.width, shape.heads) for _ in range(shape.depth))
        self.norm = nn.LayerNorm(shape.width)
        self.head = nn.Linear(shape.width, shape.out_dim)
        nn.init.normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor, prefix: int = 1) -> torch.Tensor:
        b, length = hidden.shape[0], self.shape.num_patches
        if keep.shape != (b, hidden.shape[1] - prefix):
            raise ValueError(f"kept indices {tuple(keep.shape)} do not fit {hidden.shape[1] - prefix} kept tokens")
        x = self.embed(hidden)
        grid = self.mask_token.to(x.dtype).expand(b, length, -1).clone()
        index = keep.to(x.device).unsqueeze(-1).expand(-1, -1, x.shape[-1])
        grid = grid.scatter(1, index, x[:, prefix:]) + self.pos.to(x.dtype)
        x = torch.cat([x[:, :prefix], grid], dim=1)  # the class token rides along without a position
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))[:, prefix:]


def patchify(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C), patches in the ViT's row-major order, each flattened as (C, p, p)."""
    b, c, h, w = pixels.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"a {h}x{w} image is not a whole number of {patch_size}-pixel patches")
    p = patch_size
    return pixels.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)


def patch_stats(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, spread) of every patch's pixels (..., L, 1) each: what the `patch` target divides out and what a
    prediction of it is scaled back with."""
    mean = patches.mean(dim=-1, keepdim=True)
    spread = torch.sqrt(patches.var(dim=-1, keepdim=True, unbiased=False) + TARGET_EPS)
    return mean, spread


def _normalised(patches: torch.Tensor) -> torch.Tensor:
    mean, spread = patch_stats(patches)
    return (patches - mean) / spread


def normalised_targets(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Every patch's pixels minus its mean, over its standard deviation (B, L, p*p*C)."""
    return _normalised(patchify(pixels.float(), patch_size))


def dropped_mask(keep: torch.Tensor, num_patches: int) -> torch.Tensor:
    """(B, L) float, 1 where a patch was dropped (not in `keep`)."""
    dropped = torch.ones(keep.shape[0], num_patches, device=keep.device)
    return dropped.scatter(1, keep, 0.0)


def _check_target(target: str) -> None:
    if target not in MIM_TARGETS:
        raise ValueError(f"the reconstruction target must be one of {', '.join(MIM_TARGETS)}, got {target!r}")


def mim_targets(pixels: torch.Tensor, patch_size: int, target: str = "patch") -> torch.Tensor:
    """What the decoder learns to predict for every patch (B, L, out_dim), by `target` (MIM_TARGETS)."""
    _check_target(target)
    patches = patchify(pixels.float(), patch_size)
    if target == "patch":
        return _normalised(patches)
    if target == "image":
        return patches
    return torch.cat([_normalised(patches), patches], dim=-1)


def mim_loss(pred: torch.Tensor, pixels: torch.Tensor, keep: torch.Tensor, patch_size: int,
             target: str = "patch") -> torch.Tensor:
    """Mean over the dropped patches of each patch's mean squared error against its target."""
    values = mim_targets(pixels, patch_size, target)
    if pred.shape[-1] != values.shape[-1]:
        raise ValueError(f"the decoder predicts {pred.shape[-1]} values a patch and the {target!r} target has "
                         f"{values.shape[-1]}: a decoder trained for another target")
    per_patch = (pred.float() - values).pow(2).mean(dim=-1)
    dropped = dropped_mask(keep.to(pred.device), values.shape[1])
    return (per_patch * dropped).sum() / dropped.sum().clamp_min(1.0)


def decoder_shape_for(tower: nn.Module, in_chans: int, depth: int, width: int, target: str = "patch") -> DecoderShape:
    """The decoder that fits an ImageTower (medflip_core.model.image_tower); one head per 32 channels."""
    _check_target(target)
    return DecoderShape(encoder_width=int(tower.vit.num_features), grid=tower.grid, patch_size=tower.patch_size,
                        in_chans=in_chans, depth=depth, width=width, heads=max(1, width // 32), target=target)


def build_decoder(tower: nn.Module, in_chans: int, depth: int, width: int, target: str = "patch") -> MimDecoder:
    return MimDecoder(decoder_shape_for(tower, in_chans, depth, width, target))


__all__ = ["DECODER_FILE", "MIM_TARGETS", "DecoderShape", "MimDecoder", "build_decoder", "decoder_shape_for",
           "dropped_mask", "mim_loss", "mim_targets", "normalised_targets", "patch_stats", "patchify",
           "sincos_positions"]
