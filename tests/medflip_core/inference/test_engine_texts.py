"""A text's embedding is a function of the text alone (the shipped int8 text encoder, real report sentences)."""

from __future__ import annotations

import numpy as np

from medflip_core.bundles.model_store import resolve_model
from medflip_core.data.labelled_sentences import labelled_sentences
from medflip_core.inference.engine import Engine


def test_an_embedding_does_not_depend_on_the_other_texts_of_the_call(corpus):
    sentences, _ = labelled_sentences(corpus, 40, 0)
    together = Engine(resolve_model(None), threads=1).embed_texts(sentences[:24])
    alone = Engine(resolve_model(None), threads=1)
    one_by_one = np.concatenate([alone.embed_texts([s]) for s in reversed(sentences[:24])])[::-1]
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)
    assert len({len(s.split()) for s in sentences[:24]}) > 3  # lengths differ: a padded batch would pad them
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
