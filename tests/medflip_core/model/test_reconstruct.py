"""`medflip reconstruct`: a real pre-training run's decoder fills in the patches a mask drops, on a real film, with
the mask given (as the Mask sampling tab passes it) or drawn; a run without a decoder gets a sentence."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.model.reconstruct import reconstruct

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def decoder_run(mim_decoder_run):
    return mim_decoder_run


def test_the_kept_patches_stay_and_the_dropped_ones_are_predicted(decoder_run, small_folder):
    film = load_image(next(small_folder.rglob("*.jpeg")))
    keep = list(range(0, 49, 3))  # a 112-px input has 7x7 patches of 16 px
    rec = reconstruct(decoder_run, film, keep=keep)
    import torch

    assert torch.is_grad_enabled()  # the process it ran in (this one) still trains: no global no-grad left behind
    assert rec.original.shape == rec.reconstruction.shape == (112, 112)
    assert rec.keep.tolist() == keep and np.isfinite(rec.loss) and rec.loss > 0
    patch = lambda a, i: a[(i // 7) * 16:(i // 7 + 1) * 16, (i % 7) * 16:(i % 7 + 1) * 16]  # noqa: E731
    for i in range(49):  # kept: the input as is; dropped: the decoder's own pixels, not the input's
        same = np.allclose(patch(rec.reconstruction, i), patch(rec.original, i), atol=1e-5)
        assert same == (i in keep), i
    drawn = reconstruct(decoder_run, film, ratio=0.5, strategy="integrity", seed=3)
    assert drawn.keep.size == 24 or drawn.keep.size == 25  # half of 49 kept, as a training step would
    with pytest.raises(MedflipError, match="some, not all"):
        reconstruct(decoder_run, film, keep=list(range(49)))
    other = reconstruct(decoder_run, film, keep=[0, 5, 9], keep_grid=14, strategy="attention", seed=3)
    assert "14x14" in other.note and "integrity" in other.note and other.keep.size in (12, 13)


def test_a_decoder_that_predicts_the_pixels_is_shown_as_it_predicts_them(both_target_run, small_folder):
    """A run with the `both` target predicts each patch's pixels itself (brightness included): the dropped patches
    are that prediction, not rescaled with the true patch's mean and spread, and the caption says so."""
    film = load_image(next(small_folder.rglob("*.jpeg")))
    keep = list(range(0, 49, 2))
    rec = reconstruct(both_target_run, film, keep=keep)
    assert rec.target == "both" and "brightness included" in rec.caption and "true patch" not in rec.caption
    assert np.isfinite(rec.loss) and rec.loss > 0
    patch = lambda a, i: a[(i // 7) * 16:(i // 7 + 1) * 16, (i % 7) * 16:(i % 7 + 1) * 16]  # noqa: E731
    dropped = [i for i in range(49) if i not in keep]
    assert all(np.allclose(patch(rec.reconstruction, i), patch(rec.original, i), atol=1e-5) for i in keep)
    # the dropped patches are the second half of the decoder's output, the pixels it predicts, as they are
    import torch

    from medflip_core.imaging.preprocess import preprocess
    from medflip_core.model.reconstruct import _load, checkpoint_with_decoder

    tower, decoder, pre = _load(checkpoint_with_decoder(both_target_run))
    x = torch.from_numpy(preprocess(film, pre)[None].astype(np.float32))
    k = torch.tensor([keep])
    with torch.no_grad():
        pred = decoder(tower(x, k).hidden, k, tower.vit.num_prefix_tokens)[0, :, 256:].numpy()
    for i in dropped:
        expected = np.clip(pred[i].reshape(16, 16) * pre.std + pre.mean, 0.0, 1.0)
        assert np.allclose(patch(rec.reconstruction, i), expected, atol=1e-5), i


def test_the_cli_writes_the_three_panels_and_refuses_a_run_without_a_decoder(decoder_run, trained_run,
                                                                            small_folder, tmp_path):
    film = next(small_folder.rglob("*.jpeg"))
    out = tmp_path / "recon.png"
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "reconstruct", str(decoder_run), str(film),
                           "--out", str(out), "--keep", "0,1,2,10,20,30,40", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = json.loads(proc.stdout)
    assert said["kept"] == 7 and said["loss"] > 0 and "decoder" in said["caption"]
    assert Image.open(out).size == (3 * 112 + 8, 112)
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "reconstruct", str(trained_run), str(film),
                           "--out", str(tmp_path / "no.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no reconstruction decoder" in proc.stderr and "Traceback" not in proc.stderr
