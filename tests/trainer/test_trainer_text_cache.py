"""Frozen text layers computed once per sentence give the same outputs and gradients as the full tower."""

from __future__ import annotations

import pytest
import torch

from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig
from trainer.text_cache import FrozenTextCache

SENTENCES = ["Small left pleural effusion.", "The lungs are clear without focal consolidation or effusion.",
             "Cardiomegaly.", "Right lower lobe airspace disease concerning for pneumonia.", "No pneumothorax."]


@pytest.fixture(scope="module")
def tower():
    torch.manual_seed(0)
    tower = build_model(ModelConfig()).text_tower
    tower.set_trainable("partial")
    return tower


def test_cached_outputs_and_gradients_equal_the_full_tower(tower):
    cache = FrozenTextCache(tower, max_mb=64)
    for picks in ([0, 1, 2, 3], [4, 1, 0, 3], [2, 2, 4, 1]):  # misses, then hits in other batch positions
        texts = [SENTENCES[i] for i in picks]
        tok = tower.tokenize(texts)
        full = tower(tok["input_ids"], tok["attention_mask"])
        cached = tower.forward_from_frozen(cache.states(picks, tok), tok["attention_mask"])
        torch.testing.assert_close(cached.embedding, full.embedding, atol=1e-5, rtol=1e-5)
        mask = tok["attention_mask"].unsqueeze(-1).bool()
        torch.testing.assert_close(cached.tokens * mask, full.tokens * mask, atol=1e-5, rtol=1e-5)
        tower.zero_grad(set_to_none=True)
        full.embedding.sum().backward()
        expected = {n: p.grad.clone() for n, p in tower.named_parameters() if p.grad is not None}
        tower.zero_grad(set_to_none=True)
        cached.embedding.sum().backward()
        got = {n: p.grad for n, p in tower.named_parameters() if p.grad is not None}
        assert set(got) == set(expected)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4)
    assert cache.hits > 0 and cache.misses == len(SENTENCES)


def test_in_frozen_mode_the_whole_encoder_is_cached_and_only_the_projection_trains():
    torch.manual_seed(1)
    frozen_tower = build_model(ModelConfig()).text_tower
    frozen_tower.set_trainable("frozen")
    frozen_tower.train()
    cache = FrozenTextCache(frozen_tower, max_mb=64)
    picks = [0, 3, 1, 4]
    tok = frozen_tower.tokenize([SENTENCES[i] for i in picks])
    states = cache.states(picks, tok)
    full = frozen_tower(tok["input_ids"], tok["attention_mask"])
    cached = frozen_tower.forward_from_frozen(states, tok["attention_mask"])
    torch.testing.assert_close(cached.embedding, full.embedding, atol=1e-5, rtol=1e-5)
    mask = tok["attention_mask"].unsqueeze(-1).bool()
    torch.testing.assert_close(cached.tokens * mask, full.tokens * mask, atol=1e-5, rtol=1e-5)
    assert (cached.tokens[~mask.squeeze(-1)] == 0).all()  # padding zeroed, as the packed layers give
    # the cached states are the encoder's last hidden states: nothing of the encoder runs in the step
    hidden = frozen_tower.encoder(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state
    torch.testing.assert_close(states * mask, hidden * mask, atol=1e-5, rtol=1e-5)
    frozen_tower.zero_grad(set_to_none=True)
    cached.embedding.square().sum().backward()
    assert {n for n, p in frozen_tower.named_parameters() if p.grad is not None} == {"proj.weight"}


def test_cache_stays_within_its_memory_bound(tower):
    tok = tower.tokenize(SENTENCES)
    one = tower.frozen_states(tok["input_ids"][:1], tok["attention_mask"][:1])
    per_token = one.shape[-1] * one.element_size()
    cache = FrozenTextCache(tower, max_mb=30 * per_token / (1024 * 1024))  # room for about 30 tokens
    cache.states(list(range(len(SENTENCES))), tok)
    assert 0 < cache.bytes <= cache.max_bytes
    assert len(cache._states) < len(SENTENCES)  # the oldest sentences were dropped


def test_a_pool_that_fits_is_computed_up_front(tower):
    tok = tower.tokenize(SENTENCES)
    cache = FrozenTextCache(tower, max_mb=64)
    assert cache.warm(list(range(len(SENTENCES))), tok)
    picks = [3, 0, 4]
    batch = tower.tokenize([SENTENCES[i] for i in picks])
    states = cache.states(picks, batch)
    assert cache.misses == 0 and cache.hits == 3
    full = tower(batch["input_ids"], batch["attention_mask"])
    cached = tower.forward_from_frozen(states, batch["attention_mask"])
    torch.testing.assert_close(cached.embedding, full.embedding, atol=1e-5, rtol=1e-5)
    assert not FrozenTextCache(tower, max_mb=0.001).warm(list(range(len(SENTENCES))), tok)  # too big: no warm-up


def test_in_training_mode_the_frozen_layers_use_no_dropout(tower):
    """Dropout only in the trainable top layers: the cache then holds what a training step computes."""
    tower.train()
    try:
        assert all(layer.training for layer in tower._layers()[-tower.partial_layers:])
        assert not tower.encoder.embeddings.training and not tower._layers()[0].training
        tok = tower.tokenize(SENTENCES)
        first = tower.frozen_states(tok["input_ids"], tok["attention_mask"])
        torch.testing.assert_close(tower.frozen_states(tok["input_ids"], tok["attention_mask"]), first,
                                   atol=0, rtol=0)
        cache = FrozenTextCache(tower, max_mb=64)
        states = cache.states(list(range(len(SENTENCES))), tok)
        # the cached step runs the top layers on packed real tokens, so its dropout draws are its own: the same
        # seed gives the same bits (a resumed run), dropout is really on, and without it the full tower's output
        torch.manual_seed(11)
        cached = tower.forward_from_frozen(states, tok["attention_mask"])
        torch.manual_seed(11)
        again = tower.forward_from_frozen(states, tok["attention_mask"])
        torch.testing.assert_close(again.embedding, cached.embedding, atol=0, rtol=0)
        tower.eval()
        plain = tower.forward_from_frozen(states, tok["attention_mask"])
        assert (cached.embedding - plain.embedding).abs().max() > 1e-3
        full = tower(tok["input_ids"], tok["attention_mask"])
        torch.testing.assert_close(plain.embedding, full.embedding, atol=1e-5, rtol=1e-5)
    finally:
        tower.eval()
