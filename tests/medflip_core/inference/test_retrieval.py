from __future__ import annotations

import numpy as np
import pytest

from medflip_core.errors import MedflipError
from medflip_core.inference.retrieval import SentenceBank, text_to_image
from medflip_core.reports import load_sentence_corpus


@pytest.fixture(scope="module")
def real_sentences(shared_data):
    return load_sentence_corpus(shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz")[:50]


def test_bank_round_trip_and_top_k_order(real_sentences, tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(real_sentences), 16)).astype(np.float32)
    labels = rng.integers(0, 2, size=(len(real_sentences), 14)).astype(np.int8)
    bank = SentenceBank(real_sentences, emb, labels)
    bank.save(tmp_path / "bank")
    again = SentenceBank.load(tmp_path / "bank")
    assert again.sentences == real_sentences and np.array_equal(again.labels, labels)
    query = emb[7] + 0.01 * rng.normal(size=16)
    hits = again.top_k(query, 5)[0]
    assert hits[0].index == 7 and hits[0].sentence == real_sentences[7]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_ties_break_by_index_and_mismatch_is_an_error():
    bank = SentenceBank(["a b", "c d", "e f"], np.array([[1.0, 0], [1.0, 0], [0, 1.0]]))
    assert [h.index for h in bank.top_k(np.array([1.0, 0]), 2)[0]] == [0, 1]
    with pytest.raises(MedflipError):
        SentenceBank(["a b"], np.zeros((2, 2)))


def test_text_to_image_ranking():
    images = np.array([[0.0, 1.0], [1.0, 0.1], [1.0, 0.0]])
    ranked = text_to_image(np.array([1.0, 0.0]), images)
    assert [i for i, _ in ranked] == [2, 1, 0]


@pytest.mark.slow
def test_bank_is_reembedded_with_the_engines_text_encoder(tiny_bundle, tmp_path):
    """Bank and queries from the same (ONNX) encoder: after reembed_bundle_bank, a bank row equals the engine's
    embedding of its sentence (to float16 precision)."""
    import shutil

    from medflip_core.bundles.bundle import load_bundle, refresh_file_list
    from medflip_core.inference.engine import Engine, reembed_bundle_bank

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    info = reembed_bundle_bank(bundle)
    refresh_file_list(bundle)
    load_bundle(bundle, verify=True)
    assert "ONNX" in info["embedded_with"]
    engine = Engine(bundle)
    bank = engine.sentence_bank
    direct = engine.embed_texts(bank.sentences[:20])
    np.testing.assert_allclose(bank.embeddings[:20], direct / np.linalg.norm(direct, axis=1, keepdims=True),
                               atol=2e-3)


def test_a_bank_damaged_after_the_bundle_was_opened_is_a_sentence(tiny_bundle, tmp_path):
    """A model folder changed under an open engine (the app's tests saw a FileNotFoundError traceback from a
    retrieval worker): one readable error instead."""
    import shutil

    from medflip_core.bundles.bundle import BANK_NPZ
    from medflip_core.inference.engine import Engine

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    engine = Engine(bundle)
    (bundle / BANK_NPZ).write_bytes(b"not an npz")
    with pytest.raises(MedflipError, match=r"sentence bank of .* could not be read"):
        engine.retrieve(np.ones(engine.bundle.embed_dim, dtype=np.float32), 3)


def test_a_truncated_bank_is_a_sentence_too(tiny_bundle, tmp_path):
    import shutil

    from medflip_core.bundles.bundle import BANK_NPZ
    from medflip_core.inference.engine import Engine

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    engine = Engine(bundle)
    data = (bundle / BANK_NPZ).read_bytes()
    (bundle / BANK_NPZ).write_bytes(data[: len(data) // 2])  # a copy cut short: "File is not a zip file"
    with pytest.raises(MedflipError, match="could not be read"):
        engine.retrieve(np.ones(engine.bundle.embed_dim, dtype=np.float32), 3)


def test_closeness_of_the_sentences_shown():
    from medflip_core.inference.retrieval import Hit, SentenceHits

    near = SentenceHits([Hit(0, "Right upper lobe opacity.", 0.659), Hit(1, "Left lower lobe opacity.", 0.641)],
                        bank_sd=0.03, bank_size=3000)
    assert near.closeness() == ("These 2 lie within 0.018 of each other, 0.6 standard deviations of this image's "
                                "similarity over the 3,000 sentences: their order is nearly a tie, so what they "
                                "disagree on (side, lobe, size) says nothing about this image.")
    apart = SentenceHits([Hit(0, "a", 0.70), Hit(1, "b", 0.60)], bank_sd=0.03, bank_size=10)
    assert "3.3 standard deviations" in apart.closeness() and "tie" not in apart.closeness()
    assert SentenceHits([Hit(0, "a", 0.7)], bank_sd=0.03).closeness() == ""
    assert SentenceHits([Hit(0, "a", 0.7), Hit(1, "b", 0.6)]).closeness() == ""
