"""The scores that drive the guided mask strategies during training (torch side of medflip_core.masking).

`integrity` needs only the pixels. `attention` needs one scoring pass of the current model: the image
tower on all patches and the text tower on the batch's text, in eval mode (no dropout, so the scores are a
function of the weights and the batch alone) and without gradients. The trainer times this pass and
reports its share of the step. The scores go through the same numpy functions the mask view uses.
"""

from __future__ import annotations

import numpy as np
import torch

from medflip_core.masking import check_strategy, integrity_scores, patch_text_scores
from medflip_core.model.clip_model import MedFlipModel


def text_patch_similarity(
    model: MedFlipModel, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
    frozen_text: torch.Tensor | None = None,
) -> np.ndarray:
    """(B, L) highest cosine of each patch token with any of the texts, from a no-gradient eval-mode pass.

    `frozen_text` (the trainer's cached TextTower.frozen_states) skips the frozen text layers."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            tokens = model.image_tower(pixels).tokens
            if frozen_text is not None:
                texts = model.text_tower.forward_from_frozen(frozen_text, attention_mask).embedding
            else:
                texts = model.text_tower(input_ids, attention_mask).embedding
    finally:
        for module, training in modes:
            module.training = training
    return patch_text_scores(tokens.float().cpu().numpy(), texts.float().cpu().numpy())


def mask_scores(
    model: MedFlipModel, strategy: str, pixels: torch.Tensor, input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None, frozen_text: torch.Tensor | None = None,
) -> np.ndarray | None:
    """(B, L) scores for `make_patch_mask`, or None for `random` (which needs none)."""
    check_strategy(strategy)
    if strategy == "random":
        return None
    if strategy == "integrity":
        return integrity_scores(pixels.detach().float().cpu().numpy(), model.image_tower.patch_size)
    if input_ids is None or attention_mask is None:
        raise ValueError("the attention mask strategy needs the batch's text (input ids and attention mask)")
    return text_patch_similarity(model, pixels, input_ids, attention_mask, frozen_text)
