"""Losses: MedFLIP (soft semantic targets + SVD term), CLIP/ConVIRT InfoNCE, MedCLIP semantic matching.

Each is a plain function of embeddings and labels. How the paper's Eq. 1-7 are read: docs/method-notes.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from medflip_core.model.image_tower import ImageOutput
from medflip_core.model.text_tower import TextOutput


@dataclass
class LossOutput:
    total: torch.Tensor
    contrastive: torch.Tensor
    svd: torch.Tensor
    sigma1_pos: float | None = None
    sigma1_neg: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def label_similarity(img_labels: torch.Tensor, txt_labels: torch.Tensor, uncertain_value: float = 0.5) -> torch.Tensor:
    """Eq. 1: cosine similarity of label vectors (N, M); uncertain (-1) entries count as `uncertain_value`.

    A zero label vector is similar to nothing (cosine 0), never NaN.
    """
    a = torch.where(img_labels < 0, torch.full_like(img_labels, uncertain_value), img_labels).float()
    b = torch.where(txt_labels < 0, torch.full_like(txt_labels, uncertain_value), txt_labels).float()
    return F.normalize(a, dim=1, eps=1e-8) @ F.normalize(b, dim=1, eps=1e-8).T


def soft_targets(
    img_labels: torch.Tensor, txt_labels: torch.Tensor, *, target_temperature: float = 0.1,
    uncertain_value: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2-3: softmax over texts (per image) and over images (per text) of s / target_temperature.

    The paper's softmax of raw cosines would give nearly uniform targets (cosines lie in [0, 1]); the
    temperature makes one-hot distinct labels give the identity, as contrastive learning on pairs would.
    """
    s = label_similarity(img_labels, txt_labels, uncertain_value) / target_temperature
    return s.softmax(dim=1), s.T.softmax(dim=1)


def blend_identity(targets: torch.Tensor, identity_weight: float) -> torch.Tensor:
    """Paired batches: weight `identity_weight` on the true pair (the diagonal), the rest on the label targets.

    Without it a true image-report pair counts no more than any other pair with the same labels.
    """
    if identity_weight <= 0.0:
        return targets
    if targets.shape[0] != targets.shape[1]:
        raise ValueError("identity targets need a paired (square) batch")
    eye = torch.eye(targets.shape[0], dtype=targets.dtype, device=targets.device)
    return (1.0 - identity_weight) * targets + identity_weight * eye


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()


def _logits(img: ImageOutput, txt: TextOutput, logit_scale: torch.Tensor) -> torch.Tensor:
    return logit_scale.exp() * img.embedding @ txt.embedding.T


# power iterations for sigma_1 of the token SVD term (None: full SVD); the trainer's --svd-power-iters default
SVD_POWER_ITERS = 20
SVD_POWER_TOL = 1e-6  # the power iteration stops early once no singular vector entry moves more than this


def token_sigma1(
    img_tokens: torch.Tensor, txt_tokens: torch.Tensor, txt_mask: torch.Tensor,
    iters: int | None = SVD_POWER_ITERS,
) -> torch.Tensor:
    """(N, M) top singular value of S_ij = V_i T_j^T for every image i and text j (the token reading of
    Eq. 6 in docs/method-notes.md).

    V_i: (K, D) visible patch tokens, T_j: (T, D) real text tokens (padding zeroed). Scaled by
    1/sqrt(K * T_j) so it lies in [0, 1] whatever the mask ratio and sentence length.

    `iters=None` runs a full batched SVD. An integer runs up to that many power iterations without gradient
    (fewer once the vectors stop moving, SVD_POWER_TOL)
    and then takes sigma_1 = u^T S v with u, v held fixed: at convergence this is sigma_1 and its gradient
    u v^T is the exact gradient of sigma_1, while the backward pass costs two thin einsums instead of an
    SVD backward (S itself is built without gradient). L2-normalised tokens share a dominant direction, so
    the spectral gap is wide; 20 iterations converge to ~1e-5 even at random init (tests compare against
    the full SVD).
    """
    n, k, _ = img_tokens.shape
    m = txt_tokens.shape[0]
    img = img_tokens.float()
    t = (txt_tokens * txt_mask.unsqueeze(-1).to(txt_tokens.dtype)).float()
    if iters is None:
        sigma = torch.linalg.matrix_norm(torch.einsum("nkd,mtd->nmkt", img, t), ord=2)
    else:
        with torch.no_grad():
            # one contiguous (N, M, K, T) block: einsum returns a permuted view, and every mat-vec below would
            # copy it again (two copies per iteration were most of the SVD term's cost)
            s = torch.einsum("nkd,mtd->nmkt", img, t).contiguous()
            # start from the column sums: already close to the top right singular vector when tokens align
            v = F.normalize(s.sum(dim=2) + 1e-6 * txt_mask.unsqueeze(0).to(s.dtype), dim=-1)
            for _ in range(iters):  # batched mat-vecs; stop once no v moves (a trained model: a few rounds)
                u = F.normalize((s @ v.unsqueeze(-1)).squeeze(-1), dim=-1)
                moved = F.normalize((u.unsqueeze(-2) @ s).squeeze(-2), dim=-1)
                settled = bool((moved - v).abs().max() <= SVD_POWER_TOL)
                v = moved
                if settled:
                    break
            u = F.normalize((s @ v.unsqueeze(-1)).squeeze(-1), dim=-1)
            del s
        # u^T (V_n T_m^T) v = (V_n^T u) . (T_m^T v): the same value and gradient without building the
        # (N, M, K, T) products with gradient, whose backward was most of the SVD term's cost
        sigma = (torch.einsum("nmk,nkd->nmd", u, img) * torch.einsum("nmt,mtd->nmd", v, t)).sum(dim=-1)
    lengths = txt_mask.sum(dim=1).clamp_min(1).to(sigma.dtype)
    return sigma / torch.sqrt(k * lengths).unsqueeze(0).expand(n, m)


def _sigma_summary(sigma: torch.Tensor, sim: torch.Tensor) -> tuple[float | None, float | None]:
    with torch.no_grad():
        pos, neg = sigma[sim > 0.5], sigma[sim <= 0.5]
        return (float(pos.mean()) if pos.numel() else None, float(neg.mean()) if neg.numel() else None)


def medflip_loss(
    img: ImageOutput, txt: TextOutput, img_labels: torch.Tensor, txt_labels: torch.Tensor,
    logit_scale: torch.Tensor, *, beta: float = 0.1, svd_reading: str = "token", svd_tau: float = 0.1,
    target_temperature: float = 0.1, uncertain_value: float = 0.5, svd_iters: int | None = SVD_POWER_ITERS,
    identity_weight: float = 0.0,
) -> LossOutput:
    """Eq. 7 as docs/method-notes.md reads it: soft cross-entropy against the Eq. 1-3 targets, both directions,
    plus beta times the token SVD term of Eq. 6 (sigma_1 by `svd_iters` power iterations, or the full
    SVD when None)."""
    y_v2t, y_t2v = soft_targets(img_labels, txt_labels, target_temperature=target_temperature,
                                uncertain_value=uncertain_value)
    y_v2t, y_t2v = blend_identity(y_v2t, identity_weight), blend_identity(y_t2v, identity_weight)
    logits = _logits(img, txt, logit_scale)
    contrastive = 0.5 * (soft_cross_entropy(logits, y_v2t) + soft_cross_entropy(logits.T, y_t2v))
    sim = label_similarity(img_labels, txt_labels, uncertain_value)
    if svd_reading != "token":  # the batch reading was removed: collapse minimised it (docs/method-notes.md)
        raise ValueError(f"svd_reading must be 'token', not {svd_reading!r} (the batch reading was removed)")
    sigma = token_sigma1(img.tokens, txt.tokens, txt.attention_mask, iters=svd_iters)
    svd = 0.5 * (soft_cross_entropy(sigma / svd_tau, y_v2t) + soft_cross_entropy(sigma.T / svd_tau, y_t2v))
    s_pos, s_neg = _sigma_summary(sigma, sim)
    if beta == 0.0:
        svd = svd.detach()
    total = contrastive + beta * svd
    return LossOutput(total=total, contrastive=contrastive.detach(), svd=svd.detach(), sigma1_pos=s_pos,
                      sigma1_neg=s_neg)


def infonce_loss(img: ImageOutput, txt: TextOutput, logit_scale: torch.Tensor, **_: object) -> LossOutput:
    """CLIP / ConVIRT: the i-th image and the i-th text are the only positives (paired data)."""
    logits = _logits(img, txt, logit_scale)
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    zero = torch.zeros((), device=loss.device)
    return LossOutput(total=loss, contrastive=loss.detach(), svd=zero)


def medclip_loss(
    img: ImageOutput, txt: TextOutput, img_labels: torch.Tensor, txt_labels: torch.Tensor,
    logit_scale: torch.Tensor, *, identity_weight: float = 0.0, **_: object,
) -> LossOutput:
    """MedCLIP semantic matching: targets are the label-similarity rows normalised to sum 1
    (no softmax temperature, uncertain counted as positive), soft cross-entropy both ways, no SVD term."""
    sim = label_similarity(img_labels, txt_labels, uncertain_value=1.0)

    def rows(m: torch.Tensor) -> torch.Tensor:
        total = m.sum(dim=1, keepdim=True)
        uniform = torch.full_like(m, 1.0 / m.shape[1])
        return torch.where(total > 0, m / total.clamp_min(1e-8), uniform)

    logits = _logits(img, txt, logit_scale)
    loss = 0.5 * (soft_cross_entropy(logits, blend_identity(rows(sim), identity_weight))
                  + soft_cross_entropy(logits.T, blend_identity(rows(sim.T), identity_weight)))
    zero = torch.zeros((), device=loss.device)
    return LossOutput(total=loss, contrastive=loss.detach(), svd=zero)


def _infonce_adapter(img, txt, img_labels, txt_labels, logit_scale, **options):
    return infonce_loss(img, txt, logit_scale)


LOSSES: dict[str, Callable[..., LossOutput]] = {
    "medflip": medflip_loss,
    "medclip": medclip_loss,
    "infonce": _infonce_adapter,
}


def compute_loss(name: str, img: ImageOutput, txt: TextOutput, img_labels: torch.Tensor,
                 txt_labels: torch.Tensor, logit_scale: torch.Tensor, **options: object) -> LossOutput:
    try:
        fn = LOSSES[name]
    except KeyError as exc:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}") from exc
    return fn(img, txt, img_labels, txt_labels, logit_scale, **options)
