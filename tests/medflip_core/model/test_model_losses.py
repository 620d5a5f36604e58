"""Losses against hand-computed values; finiteness and gradients on degenerate batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medflip_core.model.image_tower import ImageOutput
from medflip_core.model.losses import (
    compute_loss,
    infonce_loss,
    label_similarity,
    medclip_loss,
    medflip_loss,
    soft_targets,
    token_sigma1,
)
from medflip_core.model.text_tower import TextOutput


def _outputs(img_emb, txt_emb, img_tokens=None, txt_tokens=None, mask=None):
    img_emb = F.normalize(torch.as_tensor(img_emb, dtype=torch.float32), dim=-1)
    txt_emb = F.normalize(torch.as_tensor(txt_emb, dtype=torch.float32), dim=-1)
    if img_tokens is None:
        img_tokens = img_emb[:, None, :].repeat(1, 3, 1)
    if txt_tokens is None:
        txt_tokens = txt_emb[:, None, :].repeat(1, 2, 1)
    if mask is None:
        mask = torch.ones(txt_tokens.shape[:2], dtype=torch.long)
    return (ImageOutput(img_emb, img_tokens, None), TextOutput(txt_emb, txt_tokens, mask))


def test_label_similarity_eq1_by_hand():
    img = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0]])
    txt = torch.tensor([[1.0, 0, 0], [0, 1.0, 1.0], [0, 0, 0]])
    s = label_similarity(img, txt)
    expected = [[1, 0, 0], [1 / math.sqrt(2), 0.5, 0]]
    assert torch.allclose(s, torch.tensor(expected), atol=1e-6)


def test_uncertain_counts_as_given_value():
    s = label_similarity(torch.tensor([[-1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), uncertain_value=0.5)
    assert s.item() == pytest.approx(1.0)  # cosine ignores scale: uncertain alone still points the same way
    s2 = label_similarity(torch.tensor([[-1.0, 1.0]]), torch.tensor([[1.0, 0.0]]), uncertain_value=0.5)
    assert s2.item() == pytest.approx(0.5 / math.sqrt(1.25))


def test_targets_identity_for_distinct_one_hot_and_uniform_for_identical():
    eye = torch.eye(4)
    y_v2t, y_t2v = soft_targets(eye, eye)
    # a softmax reaches the identity only in the limit: off-diagonal e^(-1/t) at the default t = 0.1
    assert torch.allclose(y_v2t, eye, atol=1e-3) and torch.allclose(y_t2v, eye, atol=1e-3)
    sharp, _ = soft_targets(eye, eye, target_temperature=0.02)
    assert torch.allclose(sharp, eye, atol=1e-9)
    same = torch.zeros(3, 14)
    same[:, 7] = 1
    y_v2t, _ = soft_targets(same, same)
    assert torch.allclose(y_v2t, torch.full((3, 3), 1 / 3))


def test_targets_softmax_eq2_by_hand():
    img = torch.tensor([[1.0, 0.0]])
    txt = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    y, _ = soft_targets(img, txt, target_temperature=0.5)
    z = np.array([1.0, 1 / math.sqrt(2)]) / 0.5
    expected = np.exp(z) / np.exp(z).sum()
    assert np.allclose(y.numpy()[0], expected, atol=1e-6)


def test_infonce_by_hand():
    img, txt = _outputs([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.6, 0.8]])
    scale = torch.tensor(math.log(2.0))  # exp -> 2
    logits = 2 * np.array([[1.0, 0.6], [0.0, 0.8]])

    def ce(rows):
        return np.mean([-(r[i] - np.log(np.exp(r).sum())) for i, r in enumerate(rows)])

    expected = 0.5 * (ce(logits) + ce(logits.T))
    assert infonce_loss(img, txt, scale).total.item() == pytest.approx(expected, abs=1e-5)


def test_medflip_contrastive_equals_infonce_for_distinct_one_hot_labels():
    torch.manual_seed(0)
    img, txt = _outputs(torch.randn(4, 8), torch.randn(4, 8))
    labels = torch.eye(4, 14)
    scale = torch.tensor(math.log(10.0))
    mf = medflip_loss(img, txt, labels, labels, scale, beta=0.0)
    assert mf.contrastive.item() == pytest.approx(infonce_loss(img, txt, scale).total.item(), abs=1e-3)


def test_medclip_targets_are_normalised_label_similarity():
    img, txt = _outputs([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    img_labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    txt_labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scale = torch.tensor(0.0)  # logits = cosines
    out = medclip_loss(img, txt, img_labels, txt_labels, scale).total.item()
    logits = np.array([[1.0, 0.0], [0.0, 1.0]])
    sim = np.array([[1.0, 0.0], [1 / math.sqrt(2), 1 / math.sqrt(2)]])

    def sxe(lg, tgt):
        tgt = tgt / tgt.sum(axis=1, keepdims=True)
        logp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
        return -(tgt * logp).sum(axis=1).mean()

    assert out == pytest.approx(0.5 * (sxe(logits, sim) + sxe(logits.T, sim.T)), abs=1e-5)


@pytest.mark.parametrize("iters", [None, 20])
def test_token_sigma1_matches_numpy_svd(iters):
    torch.manual_seed(1)
    img_tok = F.normalize(torch.randn(2, 5, 4), dim=-1)
    txt_tok = F.normalize(torch.randn(3, 6, 4), dim=-1)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    sigma = token_sigma1(img_tok, txt_tok, mask, iters=iters)
    for i in range(2):
        for j in range(3):
            n = int(mask[j].sum())
            s = img_tok[i].numpy() @ txt_tok[j, :n].numpy().T
            expected = np.linalg.svd(s, compute_uv=False)[0] / math.sqrt(5 * n)
            assert sigma[i, j].item() == pytest.approx(expected, abs=1e-5)


def test_power_iteration_sigma1_has_the_svd_gradient():
    """The cheap default (fixed singular vectors after power iteration) must give the same value and the same
    gradient as differentiating the full SVD, on tokens shaped like a real batch (49 visible patches)."""
    torch.manual_seed(3)
    common = torch.randn(32)
    img = (torch.randn(4, 49, 32) + 0.3 * common).requires_grad_(True)
    txt = (torch.randn(5, 12, 32) + 0.3 * common).requires_grad_(True)
    mask = torch.ones(5, 12, dtype=torch.long)
    mask[1, 7:] = 0
    grads = []
    for iters in (None, 20):
        img.grad = txt.grad = None
        sigma = token_sigma1(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), mask, iters=iters)
        (sigma * torch.arange(20.0).reshape(4, 5)).sum().backward()
        grads.append((sigma.detach(), img.grad.clone(), txt.grad.clone()))
    for exact, approx in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(approx, exact, rtol=1e-4, atol=1e-5)


def test_gradients_flow_through_sigma1_and_stay_finite_when_degenerate():
    torch.manual_seed(2)
    img_tok = torch.randn(3, 4, 8, requires_grad=True)
    txt_tok = torch.randn(3, 5, 8, requires_grad=True)
    mask = torch.ones(3, 5, dtype=torch.long)
    token_sigma1(F.normalize(img_tok, dim=-1), F.normalize(txt_tok, dim=-1), mask).sum().backward()
    assert img_tok.grad.abs().sum() > 0 and torch.isfinite(img_tok.grad).all()
    # repeated singular values: identical orthonormal tokens
    eye = torch.eye(4).repeat(2, 1, 1).requires_grad_(True)
    token_sigma1(eye, eye.detach(), torch.ones(2, 4, dtype=torch.long)).sum().backward()
    assert torch.isfinite(eye.grad).all()


def test_svd_term_has_gradient_in_medflip_loss():
    torch.manual_seed(3)
    tokens = torch.randn(4, 6, 8, requires_grad=True)
    img = ImageOutput(F.normalize(torch.randn(4, 8), dim=-1), F.normalize(tokens, dim=-1), None)
    txt = TextOutput(F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 5, 8), dim=-1),
                     torch.ones(4, 5, dtype=torch.long))
    labels = torch.eye(4, 14)
    out = medflip_loss(img, txt, labels, labels, torch.tensor(2.0), beta=1.0)
    out.total.backward()
    assert tokens.grad.abs().sum() > 0
    assert out.sigma1_pos is not None and out.sigma1_neg is not None


@pytest.mark.parametrize("name", ["medflip", "medclip", "infonce"])
@pytest.mark.parametrize("case", ["identical_labels", "zero_labels", "zero_embeddings"])
def test_losses_finite_on_degenerate_batches(name, case):
    n, d = 4, 8
    emb = torch.zeros(n, d) if case == "zero_embeddings" else torch.randn(n, d)
    img, txt = _outputs(emb, emb.clone())
    labels = torch.zeros(n, 14)
    if case == "identical_labels":
        labels[:, 0] = 1
    out = compute_loss(name, img, txt, labels, labels, torch.tensor(math.log(100.0)))
    assert torch.isfinite(out.total)


def test_removed_batch_reading_is_refused():
    img, txt = _outputs(torch.randn(4, 8), torch.randn(4, 8))
    with pytest.raises(ValueError, match="batch reading was removed"):
        compute_loss("medflip", img, txt, torch.eye(4, 14), torch.eye(4, 14), torch.tensor(1.0),
                     svd_reading="batch")


@pytest.mark.parametrize("name", ["medflip", "medclip"])
def test_paired_identity_weight_puts_the_true_pair_first(name):
    """Two images with the same labels: label targets cannot tell their reports apart, the identity can."""
    torch.manual_seed(5)
    img, txt = _outputs(torch.randn(3, 8), torch.randn(3, 8))
    labels = torch.zeros(3, 14)
    labels[:2, 0] = 1
    labels[2, 1] = 1
    scale = torch.tensor(0.0)
    # the pull of image 0 towards its own report (text 0) rather than the same-label report (text 1)
    grads = {}
    for w in (0.0, 0.5):
        emb = img.embedding.clone().requires_grad_(True)
        out = compute_loss(name, ImageOutput(emb, img.tokens, None), txt, labels, labels, scale,
                           identity_weight=w)
        (g,) = torch.autograd.grad(out.total, emb)
        grads[w] = -(g[0] @ (txt.embedding[0] - txt.embedding[1]))
    assert grads[0.5] > grads[0.0] + 1e-2


def test_identity_blend_needs_a_square_batch():
    from medflip_core.model.losses import blend_identity

    with pytest.raises(ValueError, match="paired"):
        blend_identity(torch.ones(2, 3) / 3, 0.5)
    torch.testing.assert_close(blend_identity(torch.full((2, 2), 0.5), 0.5), torch.tensor([[0.75, 0.25],
                                                                                           [0.25, 0.75]]))


def test_unknown_loss_rejected():
    img, txt = _outputs(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="unknown loss"):
        compute_loss("mse", img, txt, torch.eye(2), torch.eye(2), torch.tensor(1.0))
