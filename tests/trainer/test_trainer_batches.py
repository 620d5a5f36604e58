"""Batches are functions of (seed, step, rank): resumable, disjoint across ranks, label-matched when asked."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.data.image_folder import index_image_folder
from medflip_core.data.labelled_sentences import labelled_sentences
from medflip_core.errors import MedflipError
from medflip_core.imaging.preprocess import PreprocessConfig
from medflip_core.labeler.labels import LABEL_INDEX
from trainer.batches import ImageBatches, SentencePool


@pytest.fixture(scope="module")
def pool(shared_data):
    from transformers import AutoTokenizer

    from medflip_core.model.config import default_text_model_path

    tok = AutoTokenizer.from_pretrained(str(default_text_model_path()), local_files_only=True)
    sentences, labels = labelled_sentences(shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz",
                                           max_sentences=1500)

    def tokenize(texts):
        enc = tok(list(texts), padding=True, truncation=True, max_length=48, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    focus = np.zeros(14, dtype=np.float32)
    focus[[LABEL_INDEX["No Finding"], LABEL_INDEX["Pneumonia"]]] = 1
    return SentencePool(sentences, labels, tokenize, focus_labels=focus)


def test_sentence_batches_are_deterministic_per_step(pool):
    a_tokens, a_labels, a_ids = pool.batch(5, 16, seed=0)
    b_tokens, b_labels, _ = pool.batch(5, 16, seed=0)
    c_tokens, _, _ = pool.batch(6, 16, seed=0)
    assert len(a_ids) == 16 and (a_labels.numpy() == pool.labels[a_ids]).all()
    assert (a_tokens["input_ids"] == b_tokens["input_ids"]).all() and (a_labels == b_labels).all()
    assert a_tokens["input_ids"].shape[0] == 16
    assert not (a_tokens["input_ids"].shape == c_tokens["input_ids"].shape
                and (a_tokens["input_ids"] == c_tokens["input_ids"]).all())


def test_focus_share_draws_image_labels(pool):
    labels = pool.batch(0, 100, seed=1).labels
    hits = (labels[:, [LABEL_INDEX["No Finding"], LABEL_INDEX["Pneumonia"]]] > 0).any(dim=1).float().mean()
    assert hits >= 0.8


def test_matched_batch_pairs_each_image_with_a_label_sharing_sentence(pool):
    images = np.zeros((6, 14), dtype=np.float32)
    images[:3, LABEL_INDEX["No Finding"]] = 1
    images[3:, LABEL_INDEX["Pneumonia"]] = 1
    labels = pool.matched_batch(0, images, seed=0).labels
    assert ((labels.numpy() > 0) & (images > 0)).any(axis=1).all()


def test_image_batches_split_ranks_and_repeat_after_resume(shared_data):
    records = index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")[:200]
    pre = PreprocessConfig(image_size=64)
    r0 = ImageBatches(records, pre, batch_size=8, seed=3, rank=0, world_size=2)
    r1 = ImageBatches(records, pre, batch_size=8, seed=3, rank=1, world_size=2)
    for step in (0, 7, 13):
        _, i0 = r0.indices_for_step(step)
        _, i1 = r1.indices_for_step(step)
        assert not set(i0) & set(i1)
    fresh = ImageBatches(records, pre, batch_size=8, seed=3, rank=0, world_size=2)
    _, px_a, lab_a, used_a = r0.batch(9)
    _, px_b, lab_b, used_b = fresh.batch(9)
    assert used_a == used_b and (px_a == px_b).all() and (lab_a == lab_b).all()
    assert r0.steps_per_epoch == 200 // 16
    threaded = ImageBatches(records, pre, batch_size=8, seed=3, rank=0, world_size=2, workers=2)
    threaded.prefetch(9)
    _, px_c, lab_c, used_c = threaded.batch(9)
    threaded.close()
    assert used_c == used_a and (px_c == px_a).all() and (lab_c == lab_a).all()


def test_prefetch_with_one_decode_worker_does_not_deadlock(shared_data):
    """The prefetch waits on the decode pool; with one decode worker it must not occupy that worker itself."""
    records = index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")[:64]
    pre = PreprocessConfig(image_size=64)
    plain = ImageBatches(records, pre, batch_size=8, seed=5, rank=0, world_size=1)
    one = ImageBatches(records, pre, batch_size=8, seed=5, rank=0, world_size=1, workers=1)
    try:
        one.prefetch(2)
        ahead = one._ahead[2]
        built = ahead.result(timeout=60)  # raises TimeoutError on a deadlock instead of hanging the suite
        one._ahead[2] = ahead
        assert built.used == plain.batch(2).used
        assert (one.batch(2).pixels == plain.batch(2).pixels).all()
    finally:
        one.close()


def test_batches_decoded_in_processes_equal_batches_decoded_in_threads(shared_data, tmp_path):
    """A DICOM folder (JPEG 2000 lossless and lossy, JPEG baseline, uncompressed, MONOCHROME1) plus a file that
    is not an image: the same batches, the same skipped file, whichever way the images are decoded."""
    from medflip_core.imaging.augment import AugmentConfig

    for k, path in enumerate(sorted((shared_data / "dicom").glob("*.dcm"))):
        folder = tmp_path / ("NORMAL" if k % 2 else "PNEUMONIA")
        folder.mkdir(exist_ok=True)
        (folder / path.name).symlink_to(path)
    (tmp_path / "NORMAL" / "notes.dcm").write_text("not a DICOM")
    records = index_image_folder(tmp_path)
    pre = PreprocessConfig(image_size=64)
    for augment in (None, AugmentConfig()):
        threads = ImageBatches(records, pre, batch_size=4, seed=3, workers=2, augment=augment)
        processes = ImageBatches(records, pre, batch_size=4, seed=3, workers=2, augment=augment,
                                 decode_in="processes")
        try:
            for step in range(3):
                processes.prefetch(step + 1)
                a, b = threads.batch(step), processes.batch(step)
                assert a.used == b.used
                assert np.array_equal(a.pixels.numpy(), b.pixels.numpy())
            assert processes.skipped.count == threads.skipped.count == 1
            assert processes.skipped.examples == threads.skipped.examples
        finally:
            threads.close()
            processes.close()


def test_decoding_in_processes_needs_a_worker(shared_data):
    from medflip_core.errors import MedflipError

    records = index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")[:8]
    with pytest.raises(MedflipError, match="at least one worker"):
        ImageBatches(records, PreprocessConfig(image_size=64), batch_size=4, seed=0, decode_in="processes")


def test_too_few_images_for_the_batch_says_what_batch_size_fits(shared_data):
    """A GUI walk's 20 films at batch 32 got "only 16 training images for batch size 32": no next step."""
    records = index_image_folder(shared_data / "cxr-pneumonia-kermany" / "train")[:16]
    pre = PreprocessConfig(image_size=64)
    with pytest.raises(MedflipError, match=r"only 16 training images .* set the batch size to 8 or less"):
        ImageBatches(records, pre, batch_size=32, seed=0, world_size=2)
    with pytest.raises(MedflipError, match=r"only 1 training images .*: add images$"):
        ImageBatches(records[:1], pre, batch_size=2, seed=0)
