"""BERT encoder layers run on the real tokens only (padding dropped), for the trainable top text layers.

Report sentences in a batch vary in length (IU sentences: about half of a padded batch is padding), and every
part of a BERT layer except the attention scores is per-token: the Q/K/V and output projections, both layer
norms and the feed-forward block. Run on the packed real tokens, they cost half as much; only the attention
scores need the padded (batch, token) layout, and padded keys are masked there exactly as the encoder masks
them. Same weights, same maths, the layer's own dropout rates (drawn by medflip_core.model.fast_dropout on the
CPU; tests/medflip_core/model/test_model_packed_layers.py compares outputs and gradients with the encoder's own
layers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medflip_core.model.fast_dropout import dropout

_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.self.dropout",
          "attention.output.dense", "attention.output.LayerNorm", "attention.output.dropout",
          "intermediate.dense", "output.dense", "output.LayerNorm", "output.dropout")


def _has(module: nn.Module, dotted: str) -> bool:
    for name in dotted.split("."):
        module = getattr(module, name, None)
        if module is None:
            return False
    return True


def can_pack(layer: nn.Module, config) -> bool:
    """A plain BERT-style encoder layer (what MiniLM and most sentence encoders use); anything else (decoders,
    cross-attention, relative positions, chunked feed-forward) runs through its own forward instead."""
    return (all(_has(layer, p) for p in _PARTS) and hasattr(layer.intermediate, "intermediate_act_fn")
            and not getattr(config, "is_decoder", False) and not getattr(config, "add_cross_attention", False)
            and getattr(config, "position_embedding_type", "absolute") == "absolute"
            and not getattr(config, "chunk_size_feed_forward", 0))


class PackedTokens:
    """Where the real tokens of a (B, T) batch sit: flat indices into B * T, and the key mask for attention."""

    def __init__(self, attention_mask: torch.Tensor) -> None:
        self.batch, self.width = attention_mask.shape
        real = attention_mask.bool()
        self.index = real.reshape(-1).nonzero().squeeze(1)
        self.key_mask = real[:, None, None, :]  # (B, 1, 1, T): True = attend

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (N_real, H)."""
        return padded.reshape(self.batch * self.width, -1).index_select(0, self.index)

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(N_real, H) -> (B, T, H), zeros at padding."""
        out = packed.new_zeros(self.batch * self.width, packed.shape[-1]).index_copy(0, self.index, packed)
        return out.view(self.batch, self.width, -1)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor, scale: float,
                     drop) -> torch.Tensor:
    """Softmax attention over the real keys with `drop` applied to the probabilities, written out (what torch's
    math kernel computes) so the dropout can be this module's."""
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~key_mask, float("-inf"))
    return drop(scores.softmax(dim=-1)) @ v


def packed_layer(layer: nn.Module, x: torch.Tensor, where: PackedTokens) -> torch.Tensor:
    """One BERT layer on packed tokens (N_real, H) -> (N_real, H); dropout as the layer's rates say
    (medflip_core.model.fast_dropout on the CPU)."""
    attn = layer.attention.self
    heads = attn.num_attention_heads
    head_size = attn.attention_head_size
    training = layer.training

    def heads_view(t: torch.Tensor) -> torch.Tensor:  # (N_real, H) -> (B, heads, T, head_size)
        return where.unpack(t).view(where.batch, where.width, heads, head_size).transpose(1, 2)

    q, k, v = (heads_view(proj(x)) for proj in (attn.query, attn.key, attn.value))
    scale = getattr(attn, "scaling", head_size**-0.5)
    p_attn = attn.dropout.p if training else 0.0
    if p_attn > 0.0 and x.device.type == "cpu":  # the written-out kernel, for this module's cheaper CPU dropout
        context = masked_attention(q, k, v, where.key_mask, scale, lambda probs: dropout(probs, p_attn, True))
    else:  # no dropout, or a GPU: torch's fused kernel with its own dropout
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=where.key_mask, dropout_p=p_attn, scale=scale)
    context = where.pack(context.transpose(1, 2).reshape(where.batch, where.width, heads * head_size))
    out = layer.attention.output
    h = out.LayerNorm(dropout(out.dense(context), out.dropout.p, training) + x)
    ffn = layer.output
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(h))
    return ffn.LayerNorm(dropout(ffn.dense(inner), ffn.dropout.p, training) + h)


__all__ = ["PackedTokens", "can_pack", "masked_attention", "packed_layer"]
