"""Image tower: a timm ViT whose patch tokens are masked (MAE-style, per sample) after the patch and
position embeddings, so a masked step runs the transformer on a fraction of the tokens."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import timm
import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, resample_abs_pos_embed
from torch import nn

from medflip_core.masking import DEFAULT_GUIDED_SHARE, make_patch_mask
from medflip_core.model.config import ModelConfig


@dataclass
class ImageOutput:
    embedding: torch.Tensor  # (B, D) L2-normalised
    tokens: torch.Tensor  # (B, K, D) L2-normalised projected visible patch tokens
    keep: torch.Tensor | None  # (B, K) patch indices used, None when all patches were seen
    hidden: torch.Tensor | None = None  # (B, prefix + K, width) final normed states (the MIM decoder's input)


def mask_for_batch(
    batch: int, num_patches: int, ratio: float, rng: np.random.Generator | int | None,
    strategy: str = "random", scores: np.ndarray | None = None, guided_share: float = DEFAULT_GUIDED_SHARE,
) -> torch.Tensor | None:
    """Kept patch indices from the shared masking module, or None for ratio 0 (no masking).

    `scores` (B, L) drive the guided strategies (medflip_core.model.mask_scores computes them)."""
    if ratio <= 0.0:
        return None
    return torch.from_numpy(make_patch_mask(strategy, batch, num_patches, ratio, rng, scores, guided_share).keep)


def gather_rows(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, L, D) rows picked per sample by (B, K) indices -> (B, K, D)."""
    index = index.to(tokens.device)
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class ImageTower(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.vit = timm.create_model(
            cfg.vision, pretrained=False, num_classes=0, in_chans=cfg.in_chans, img_size=cfg.image_size
        )
        width = self.vit.num_features
        self.pool_mode = cfg.vision_pool
        self.proj = nn.Linear(width, cfg.embed_dim, bias=False)
        nn.init.normal_(self.proj.weight, std=width**-0.5)

    @property
    def num_patches(self) -> int:
        return int(self.vit.patch_embed.num_patches)

    @property
    def patch_size(self) -> int:
        return int(self.vit.patch_embed.patch_size[0])

    @property
    def grid(self) -> tuple[int, int]:
        rows, cols = self.vit.patch_embed.grid_size
        return int(rows), int(cols)

    def fit_positions(self, state: dict[str, torch.Tensor], prefix: str = "image_tower.") -> dict[str, torch.Tensor]:
        """`state` with its position table resampled (bicubic, the class token's row kept) to this tower's
        patch grid when it was trained at another image size; unchanged when the sizes agree."""
        key = prefix + "vit.pos_embed"
        table = state.get(key)
        mine = self.vit.pos_embed
        if table is None or mine is None or table.shape == mine.shape:
            return state
        prefix_tokens = self.vit.num_prefix_tokens
        old = round((table.shape[1] - prefix_tokens) ** 0.5)
        if old * old != table.shape[1] - prefix_tokens or table.shape[2] != mine.shape[2]:
            raise ValueError(f"cannot resample a position table of shape {tuple(table.shape)} to "
                             f"{tuple(mine.shape)}")
        resampled = resample_abs_pos_embed(table.float(), list(self.grid), [old, old],
                                           num_prefix_tokens=prefix_tokens).to(table.dtype)
        return {**state, key: resampled.contiguous()}

    def _embeds_kept_only(self) -> bool:
        """A plain ViT stem (timm's PatchEmbed: one square stride = kernel convolution on the pixels, a class token
        that shares the position table, no register tokens, a fixed image size): then a masked step can embed
        only the kept patches. Hybrid stems (a CNN before the projection) and the rest take the full path."""
        vit, pe = self.vit, self.vit.patch_embed
        conv = getattr(pe, "proj", None)
        return (isinstance(pe, PatchEmbed) and isinstance(conv, nn.Conv2d) and conv.kernel_size == conv.stride
                and conv.kernel_size[0] == conv.kernel_size[1] and conv.padding == (0, 0)
                and conv.dilation == (1, 1) and conv.groups == 1 and getattr(pe, "img_size", None) is not None
                and getattr(pe, "flatten", False) and not getattr(pe, "dynamic_img_pad", False)
                and not getattr(vit, "dynamic_img_size", False) and not getattr(vit, "no_embed_class", False)
                and getattr(vit, "reg_token", None) is None and getattr(vit, "cls_token", None) is not None
                and getattr(vit, "pos_embed", None) is not None and vit.num_prefix_tokens == 1)

    def _embed_kept(self, pixels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Class token + the kept patches' embeddings, as the full stem followed by a gather would give, at a
        quarter of the stem's cost at mask 0.75 (the convolution is a matrix product per patch)."""
        vit, conv = self.vit, self.vit.patch_embed.proj
        p = conv.kernel_size[0]
        b, c, h, w = pixels.shape
        if (h, w) != tuple(vit.patch_embed.img_size):
            raise ValueError(f"expected {tuple(vit.patch_embed.img_size)} px images, got {(h, w)}")
        # (B, C, H, W) -> (B, L, C*p*p) in row-major patch order, each patch flattened as the kernel is (C, p, p)
        patches = pixels.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)
        x = F.linear(gather_rows(patches, keep), conv.weight.reshape(conv.out_channels, -1), conv.bias)
        x = vit.patch_embed.norm(x)
        x = x + gather_rows(vit.pos_embed[:, 1:].expand(b, -1, -1), keep)
        cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(b, -1, -1)
        return vit.pos_drop(torch.cat([cls, x], dim=1))

    def forward(self, pixels: torch.Tensor, keep: torch.Tensor | None = None) -> ImageOutput:
        vit = self.vit
        prefix = vit.num_prefix_tokens
        if keep is not None and self._embeds_kept_only():
            x = self._embed_kept(pixels, keep)
        else:
            x = vit.patch_embed(pixels)
            x = vit._pos_embed(x)  # adds the class token and position embeddings
            if keep is not None:
                x = torch.cat([x[:, :prefix], gather_rows(x[:, prefix:], keep)], dim=1)
        x = vit.norm_pre(x)
        x = vit.blocks(x)
        x = vit.norm(x)
        patch_tokens = x[:, prefix:]
        pooled = x[:, 0] if self.pool_mode == "token" and prefix else patch_tokens.mean(dim=1)
        embedding = F.normalize(self.proj(pooled), dim=-1)
        tokens = F.normalize(self.proj(patch_tokens), dim=-1)
        return ImageOutput(embedding=embedding, tokens=tokens, keep=keep, hidden=x)
