"""The packed top text layers compute what the encoder's own layers compute, on real report sentences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medflip_core.data.labelled_sentences import labelled_sentences
from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.packed_layers import PackedTokens, can_pack, masked_attention, packed_layer
from medflip_core.resources import default_shared_data


@pytest.fixture(scope="module")
def tower():
    torch.manual_seed(0)
    tower = build_model(ModelConfig()).text_tower
    tower.set_trainable("partial")
    tower.eval()
    return tower


@pytest.fixture(scope="module")
def batch(tower):
    corpus = default_shared_data() / "iu-xray-reports" / "NLMCXR_reports.tgz"
    sentences, _ = labelled_sentences(corpus, 64, 0)
    tok = tower.tokenize(sentences[:24])
    lengths = tok["attention_mask"].sum(dim=1)
    assert lengths.min() < lengths.max()  # real padding to drop
    return tok


def test_packed_layers_equal_the_encoder_layers_at_every_real_token(tower, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    frozen = tower.frozen_states(ids, mask)
    hidden = frozen
    hf_mask = tower._layer_mask(mask, hidden)
    top = tower._layers()[-tower.partial_layers:]
    for layer in top:
        hidden = layer(hidden, hf_mask)
    where = PackedTokens(mask)
    packed = where.pack(frozen)
    for layer in top:
        packed = packed_layer(layer, packed, where)
    assert packed.shape[0] == int(mask.sum())
    real = mask.bool()
    torch.testing.assert_close(where.unpack(packed)[real], hidden[real], atol=2e-5, rtol=1e-5)
    assert (where.unpack(packed)[~real] == 0).all()


def test_packed_forward_has_the_full_towers_gradients(tower, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    frozen = tower.frozen_states(ids, mask)
    grads = []
    for run in (lambda: tower(ids, mask), lambda: tower.forward_from_frozen(frozen, mask)):
        tower.zero_grad(set_to_none=True)
        out = run()
        m = mask.unsqueeze(-1)
        (out.embedding.square().sum() + (out.tokens * m).sum()).backward()
        grads.append({n: p.grad.clone() for n, p in tower.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1]) and grads[0]
    for name, expected in grads[0].items():
        torch.testing.assert_close(grads[1][name], expected, atol=1e-4, rtol=1e-3, msg=name)


def test_projected_tokens_are_zero_at_padding_and_the_towers_at_real_tokens(tower, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        full = tower(ids, mask)
        cached = tower.forward_from_frozen(tower.frozen_states(ids, mask), mask)
    real = mask.bool()
    assert (cached.tokens[~real] == 0).all()
    torch.testing.assert_close(cached.tokens[real], full.tokens[real], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(cached.embedding, full.embedding, atol=2e-5, rtol=1e-5)


def test_layers_that_are_not_plain_bert_are_not_packed(tower):
    config = tower.encoder.config
    assert can_pack(tower._layers()[-1], config)
    assert not can_pack(nn.Linear(4, 4), config)
    decoder = type(config)(**{**config.to_dict(), "is_decoder": True})
    assert not can_pack(tower._layers()[-1], decoder)


def test_written_out_attention_equals_torchs_on_padded_sentences(batch):
    mask = batch["attention_mask"]
    where = PackedTokens(mask)
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(mask.shape[0], 12, mask.shape[1], 32, generator=gen) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=where.key_mask, scale=0.2)
    torch.testing.assert_close(masked_attention(q, k, v, where.key_mask, 0.2, lambda probs: probs), expected,
                               atol=1e-5, rtol=1e-5)


def test_training_mode_drops_out_by_the_layers_rates_and_is_seeded(tower, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    frozen = tower.frozen_states(ids, mask)
    real = mask.bool()
    with torch.no_grad():
        clean = tower.forward_from_frozen(frozen, mask).tokens[real]
        tower.train()
        try:
            torch.manual_seed(5)
            a = tower.forward_from_frozen(frozen, mask).tokens[real]
            torch.manual_seed(5)
            b = tower.forward_from_frozen(frozen, mask).tokens[real]
            dropouts = [m for layer in tower._layers()[-tower.partial_layers:] for m in layer.modules()
                        if isinstance(m, nn.Dropout)]
            rates = [m.p for m in dropouts]
            assert len(dropouts) == 3 * tower.partial_layers and all(r > 0 for r in rates)
            for m in dropouts:
                m.p = 0.0
            no_drop = tower.forward_from_frozen(frozen, mask).tokens[real]
            for m, r in zip(dropouts, rates, strict=True):
                m.p = r
        finally:
            tower.eval()
    assert torch.equal(a, b)
    assert not torch.allclose(a, clean, atol=1e-3)
    torch.testing.assert_close(no_drop, clean, atol=2e-5, rtol=1e-5)
