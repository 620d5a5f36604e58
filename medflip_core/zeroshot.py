"""Zero-shot scoring from embeddings (numpy only): class embeddings, probabilities, similarity maps."""

from __future__ import annotations

import numpy as np

from medflip_core.prompts import PromptPlan


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def class_embeddings(plan: PromptPlan, text_embeddings: np.ndarray, negatives: bool = False) -> np.ndarray:
    """(C, D): mean of each label's normalised prompt embeddings, renormalised (prompt ensembling)."""
    t = l2_normalise(text_embeddings)
    groups = plan.negatives if negatives else plan.positives
    if groups is None:
        raise ValueError("this prompt plan has no negative prompts (use mode='pairs')")
    return l2_normalise(np.stack([t[idx].mean(axis=0) for idx in groups]))


def zero_shot_scores(image_emb: np.ndarray, class_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """(N, C) probabilities: softmax over classes of scale * cosine (one label per image)."""
    img = l2_normalise(np.atleast_2d(image_emb))
    return _softmax(logit_scale * img @ l2_normalise(class_emb).T, axis=1)


def pair_scores(image_emb: np.ndarray, pos_emb: np.ndarray, neg_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """(N, C) P(label present): for each class a softmax over its positive and negative prompt (multi-label)."""
    img = l2_normalise(np.atleast_2d(image_emb))
    pos = logit_scale * img @ l2_normalise(pos_emb).T
    neg = logit_scale * img @ l2_normalise(neg_emb).T
    return _softmax(np.stack([pos, neg], axis=-1), axis=-1)[..., 0]


def patch_similarity_map(
    patch_tokens: np.ndarray, text_emb: np.ndarray, grid: tuple[int, int], keep: np.ndarray | None = None
) -> np.ndarray:
    """(rows, cols) cosine between each patch token and a text embedding; masked-out patches are NaN."""
    rows, cols = grid
    sims = l2_normalise(patch_tokens) @ l2_normalise(text_emb).reshape(-1)
    out = np.full(rows * cols, np.nan, dtype=np.float32)
    if keep is None:
        out[: sims.shape[0]] = sims
    else:
        out[np.asarray(keep)] = sims
    return out.reshape(rows, cols)
