"""Masked image modelling in the real trainer on real images: the reconstruction loss in the step events, the
decoder beside (never inside) the model weights, resume, images without labels, and exports without the decoder."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from safetensors.numpy import load_file

from medflip_core.bundles.bundle import IMAGE_ONNX, TEXT_ONNX, WEIGHTS
from medflip_core.bundles.checkpoint_layout import MODEL_FILE, latest_checkpoint
from medflip_core.data.image_folder import split_then_subset
from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.inference.engine import Engine
from medflip_core.model.clip_model import build_model
from medflip_core.model.config import ModelConfig
from medflip_core.model.mim_decoder import DECODER_FILE, MIM_TARGETS
from trainer.config import CHOICES, TrainConfig
from trainer.config_flags import add_config_flags, resolve_config
from trainer.mim import index_unlabelled, make_decoder
from trainer.training_data import index_images

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unlabelled_folder(shared_data, tmp_path_factory):
    """Six real TBX11K films copied into a flat folder (no classes, no labels)."""
    folder = tmp_path_factory.mktemp("unlabelled")
    for f in sorted((shared_data / "cxr-tb-tbx11k" / "images").iterdir())[:6]:
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def mim_run(tt, small_folder, corpus, unlabelled_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("mim_run")
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, out, "--max-steps", "2", "--eval-every", "0",
                                                   "--checkpoint-every", "1", "--mim-weight", "0.5",
                                                   "--decoder-depth", "1", "--decoder-width", "64",
                                                   "--unlabelled", str(unlabelled_folder),
                                                   "--unlabelled-batch-size", "3"))
    assert code == 0, err[-3000:]
    return out, events


def test_step_events_carry_the_reconstruction_loss(mim_run, unlabelled_folder):
    _, events = mim_run
    start = events[0]
    assert start["event"] == "start" and start["mim_weight"] == 0.5
    assert start["n_unlabelled"] == len(list(unlabelled_folder.iterdir())) == 6
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2
    for e in steps:
        assert e["mim"] is not None and 0.2 < e["mim"] < 10.0  # normalised targets: predicting 0 scores 1.0
        # the total is the image-text loss plus the weighted reconstruction loss
        assert e["loss"] == pytest.approx(e["contrastive"] + 0.1 * e["svd"] + 0.5 * e["mim"], rel=1e-4)


def test_the_decoder_sits_beside_the_model_weights(mim_run):
    out, _ = mim_run
    ckpt = latest_checkpoint(out)
    assert (ckpt.path / DECODER_FILE).is_file()
    model_keys = set(load_file(str(ckpt.path / MODEL_FILE)))
    assert model_keys == set(build_model(ModelConfig.from_dict(ckpt.state["model_config"])).state_dict())
    decoder = load_file(str(ckpt.path / DECODER_FILE))
    assert decoder["mask_token"].shape == (1, 1, 64) and not model_keys & set(decoder)


def _resumable_copy(out: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a finished run folder that resumes on its own (its config names the copy), and that config."""
    run = tmp_path / "resumed"
    shutil.copytree(out, run)
    config = run / "config.json"
    config.write_text(config.read_text().replace(str(out), str(run)))
    return run, config


def test_a_mim_run_resumes_with_its_decoder(tt, mim_run, tmp_path):
    out, _ = mim_run
    run, config = _resumable_copy(out, tmp_path)
    before = load_file(str(latest_checkpoint(run).path / DECODER_FILE))
    code, events, err = tt.run("pretrain", ["--config", str(config), "--resume", "--max-steps", "3"])
    assert code == 0, err[-2000:]
    assert events[0]["start_step"] == 2 and events[-1]["step"] == 3
    after = load_file(str(latest_checkpoint(run).path / DECODER_FILE))
    assert any(not np.array_equal(before[k], after[k]) for k in before)  # the decoder went on training
    # resuming a reconstruction run without its decoder is refused with a sentence, not a traceback
    plain = json.loads(config.read_text())
    plain.update(mim_weight=0.0, unlabelled=[])
    (run / "plain.json").write_text(json.dumps(plain))
    code, events, err = tt.run("pretrain", ["--config", str(run / "plain.json"), "--resume", "--max-steps", "4"])
    assert code != 0
    assert any(e["event"] == "error" and "resume it with its own --mim-weight (0.5)" in e["message"]
               for e in events), events[-1:]


def test_the_reconstruction_target_is_the_runs_own(tt, both_target_run, tmp_path):
    """`--mim-target both`: the decoder predicts twice a patch's pixels, the state says which target it learnt, and
    resuming it with another target is refused with a sentence (the decoder would not fit)."""
    ckpt = latest_checkpoint(both_target_run)
    assert ckpt.state["config"]["mim_target"] == "both"
    assert load_file(str(ckpt.path / DECODER_FILE))["head.weight"].shape == (2 * 16 * 16, 64)
    run = tmp_path / "resumed"
    shutil.copytree(both_target_run, run)
    config = json.loads((run / "config.json").read_text())
    config.update(out_dir=str(run), mim_target="patch")
    (run / "patch.json").write_text(json.dumps(config))
    code, events, err = tt.run("pretrain", ["--config", str(run / "patch.json"), "--resume", "--max-steps", "3"])
    assert code != 0 and "Traceback" not in err
    assert any(e["event"] == "error" and "resume it with --mim-target both" in e["message"] for e in events), \
        events[-1:]


def test_the_export_never_carries_the_decoder(mim_run, tmp_path, shared_data):
    from medflip_core.model.export import export_checkpoint

    out, _ = mim_run
    ckpt = latest_checkpoint(out)
    bundle = export_checkpoint(ckpt.path, tmp_path / "bundle", name="mim-test")
    assert not any("decoder" in p.name for p in bundle.rglob("*"))
    weights = load_file(str(bundle / WEIGHTS))
    assert set(weights) == set(load_file(str(ckpt.path / MODEL_FILE)))
    decoder = load_file(str(ckpt.path / DECODER_FILE))
    big = {k: v for k, v in decoder.items() if v.size >= 64}
    for onnx_file in (IMAGE_ONNX, TEXT_ONNX):
        graph = onnx.load(str(bundle / onnx_file)).graph
        assert [o.name for o in graph.output] in (["embedding", "patch_tokens"], ["embedding"])
        for init in graph.initializer:
            value = numpy_helper.to_array(init)
            for name, tensor in big.items():
                assert not (value.shape == tensor.shape and np.allclose(value, tensor)), (onnx_file, name)
    engine = Engine(bundle, threads=2)
    image = load_image(next((shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA").iterdir()))
    emb = engine.embed_images([image])
    assert emb.embedding.shape == (1, 256) and emb.patch_tokens.shape == (1, 49, 256)
    probs = engine.classify(emb.embedding[0], ["No Finding", "Pneumonia"])
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)


def test_mim_weight_zero_builds_no_decoder(trained_run):
    ckpt = latest_checkpoint(trained_run)
    assert ckpt.state["config"]["mim_weight"] == 0.0
    assert not (ckpt.path / DECODER_FILE).exists()
    cfg = TrainConfig.from_dict(ckpt.state["config"])
    assert make_decoder(cfg, build_model(cfg.model)) is None


def test_unlabelled_images_of_validation_patients_are_left_out(small_folder, corpus):
    """The labelled folder given again as images without labels: its validation patients' files stay out."""
    cfg = TrainConfig(images=[str(small_folder)], corpus=str(corpus), val_fraction=0.25, max_sentences=50,
                      mim_weight=1.0, unlabelled=[str(small_folder)], max_steps=1)
    _, val = split_then_subset(index_images(cfg), cfg.val_fraction, cfg.seed)  # the trainer's split
    records, left_out = index_unlabelled(cfg, val)
    assert len(val) > 0
    assert left_out == len(val)
    val_patients = {r.patient_id for r in val}
    assert records and not {r.patient_id for r in records} & val_patients
    assert all(not r.labels.any() for r in records)


def _resolve(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return resolve_config("pretrain", parser.parse_args(list(argv)))


def test_flags_and_their_checks(small_folder, corpus, unlabelled_folder):
    base = ["--images", str(small_folder), "--corpus", str(corpus), "--max-steps", "1"]
    cfg = _resolve(*base, "--mim-weight", "0.3", "--unlabelled", str(unlabelled_folder), "--unlabelled",
                   str(small_folder), "--decoder-depth", "3", "--decoder-width", "96")
    assert cfg.unlabelled == [str(unlabelled_folder), str(small_folder)]
    assert (cfg.mim_weight, cfg.decoder_depth, cfg.decoder_width) == (0.3, 3, 96)
    assert _resolve(*base).mim_weight == 0.0 and _resolve(*base).unlabelled == []
    with pytest.raises(MedflipError, match="mim-weight"):
        _resolve(*base, "--unlabelled", str(unlabelled_folder))
    with pytest.raises(MedflipError, match="mask-ratio"):
        _resolve(*base, "--mim-weight", "1", "--mask-ratio", "0")
    with pytest.raises(MedflipError, match="multiple of 32"):
        _resolve(*base, "--mim-weight", "1", "--decoder-width", "100")
    assert CHOICES["mim_target"] == MIM_TARGETS  # the trainer's list (no torch import) is the decoder's
    assert _resolve(*base).mim_target == "patch"  # MAE's per-patch normalised target unless asked
    assert _resolve(*base, "--mim-weight", "1", "--mim-target", "image").mim_target == "image"
    with pytest.raises(MedflipError, match="mim-target must be one of patch, image, both"):
        _resolve(*base, "--mim-weight", "1", "--mim-target", "pixels")


@pytest.fixture(scope="module")
def reconstruction_only_run(tt, small_folder, corpus, unlabelled_folder, mim_run, tmp_path_factory):
    """An MAE phase: --clip-weight 0 from the MIM run's checkpoint, two steps, no text pass."""
    out = tmp_path_factory.mktemp("mae_phase")
    init = latest_checkpoint(mim_run[0]).path
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, out, "--max-steps", "2", "--eval-every", "0",
                                                   "--checkpoint-every", "1", "--mim-weight", "1", "--clip-weight",
                                                   "0", "--decoder-depth", "1", "--decoder-width", "64",
                                                   "--unlabelled", str(unlabelled_folder), "--init-from", str(init)))
    assert code == 0, err[-3000:]
    return init, out, events


def test_a_reconstruction_only_phase_trains_the_image_tower_alone(reconstruction_only_run):
    init, out, events = reconstruction_only_run
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2
    for e in steps:
        assert e["contrastive"] == 0.0 and e["svd"] == 0.0
        assert e["loss"] == pytest.approx(e["mim"], rel=1e-5) and 0.2 < e["mim"] < 10.0
    before = load_file(str(init / MODEL_FILE))
    after = load_file(str(latest_checkpoint(out).path / MODEL_FILE))
    frozen = [k for k in before if k.startswith(("text_tower.", "image_tower.proj.")) or k == "logit_scale"]
    assert frozen and all(np.array_equal(before[k], after[k]) for k in frozen)  # nothing the text side uses moved
    assert not np.array_equal(before["image_tower.vit.blocks.0.attn.qkv.weight"],
                              after["image_tower.vit.blocks.0.attn.qkv.weight"])


def test_a_run_can_continue_at_another_resolution(tt, small_folder, corpus, reconstruction_only_run, tmp_path):
    """A resolution schedule: the 112-px phase's weights start a 144-px run, the position table resampled."""
    _, mae_out, _ = reconstruction_only_run
    init = latest_checkpoint(mae_out).path
    out = tmp_path / "at144"
    code, _, err = tt.run("pretrain", tt.args(small_folder, corpus, out, "--max-steps", "1", "--eval-every", "0",
                                              "--checkpoint-every", "1", "--init-from", str(init),
                                              "--image-size", "144"))
    assert code == 0, err[-3000:]
    ckpt = latest_checkpoint(out)
    assert ckpt.state["model_config"]["image_size"] == 144
    before, after = load_file(str(init / MODEL_FILE)), load_file(str(ckpt.path / MODEL_FILE))
    assert before["image_tower.vit.pos_embed"].shape == (1, 1 + 7 * 7, 192)
    assert after["image_tower.vit.pos_embed"].shape == (1, 1 + 9 * 9, 192)
    # without --image-size the init's own size is kept, as before
    code, _, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path / "same", "--max-steps", "1",
                                                   "--eval-every", "0", "--init-from", str(init)))
    assert code == 0, err[-3000:]
    assert latest_checkpoint(tmp_path / "same").state["model_config"]["image_size"] == 112


def test_clip_weight_checks(small_folder, corpus):
    base = ["--images", str(small_folder), "--corpus", str(corpus), "--max-steps", "1"]
    with pytest.raises(MedflipError, match="clip-weight 0"):
        _resolve(*base, "--clip-weight", "0")
    with pytest.raises(MedflipError, match="attention"):
        _resolve(*base, "--clip-weight", "0", "--mim-weight", "1", "--mask-strategy", "attention")
    assert _resolve(*base, "--clip-weight", "0", "--mim-weight", "1").clip_weight == 0.0


@pytest.fixture(scope="module")
def instance_run(tt, small_folder, corpus, unlabelled_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("instance_run")
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, out, "--max-steps", "2", "--eval-every", "0",
                                                   "--checkpoint-every", "1", "--mim-weight", "0.5",
                                                   "--decoder-depth", "1", "--decoder-width", "64",
                                                   "--instance-weight", "0.25", "--unlabelled", str(unlabelled_folder),
                                                   "--unlabelled-batch-size", "3"))
    assert code == 0, err[-3000:]
    return out, events


def test_the_instance_term_is_in_the_step_and_its_head_beside_the_model(instance_run, tmp_path):
    """--instance-weight: every film of a step (labelled and not) is encoded twice under its own masks; the step
    event carries the InfoNCE loss, the total adds it, the head is saved beside (never in) the model weights and
    the export leaves it out."""
    from medflip_core.model.export import export_checkpoint
    from medflip_core.model.instance_head import INSTANCE_FILE

    out, events = instance_run
    steps = [e for e in events if e["event"] == "step"]
    films = 4 + 3  # the batch (tt.args: --batch-size 4) and the films without labels
    for e in steps:
        # at the start the head cannot tell the views apart: about chance, log(films)
        assert e["instance"] is not None and 0.3 * math.log(films) < e["instance"] < 2 * math.log(films)
        assert e["loss"] == pytest.approx(e["contrastive"] + 0.1 * e["svd"] + 0.5 * e["mim"] + 0.25 * e["instance"],
                                          rel=1e-4)
        assert e["samples_per_s"] > 0
    ckpt = latest_checkpoint(out)
    head = load_file(str(ckpt.path / INSTANCE_FILE))
    assert head and not set(head) & set(load_file(str(ckpt.path / MODEL_FILE)))
    bundle = export_checkpoint(ckpt.path, tmp_path / "bundle", name="instance-test")
    assert not any("instance" in p.name or "decoder" in p.name for p in bundle.rglob("*"))
    assert set(load_file(str(bundle / WEIGHTS))) == set(load_file(str(ckpt.path / MODEL_FILE)))


def test_an_instance_run_resumes_only_with_its_head(tt, instance_run, tmp_path):
    from medflip_core.model.instance_head import INSTANCE_FILE

    out, _ = instance_run
    run, config = _resumable_copy(out, tmp_path)
    before = load_file(str(latest_checkpoint(run).path / INSTANCE_FILE))
    code, events, err = tt.run("pretrain", ["--config", str(config), "--resume", "--max-steps", "3"])
    assert code == 0, err[-2000:]
    after = load_file(str(latest_checkpoint(run).path / INSTANCE_FILE))
    assert events[0]["start_step"] == 2 and any(not np.array_equal(before[k], after[k]) for k in before)
    without = json.loads(config.read_text())
    without.update(instance_weight=0.0)
    (run / "without.json").write_text(json.dumps(without))
    code, events, err = tt.run("pretrain", ["--config", str(run / "without.json"), "--resume", "--max-steps", "4"])
    assert code != 0
    assert any(e["event"] == "error" and "trained with the instance term (--instance-weight 0.25)" in e["message"]
               for e in events), events[-1:]


def test_instance_flag_checks(small_folder, corpus):
    base = {"images": [str(small_folder)], "corpus": str(corpus), "mim_weight": 1.0}
    for bad, words in (({"instance_weight": -1.0}, "--instance-weight must be 0"),
                       ({"instance_weight": 1.0, "instance_temperature": 0.0}, "--instance-temperature positive"),
                       ({"instance_weight": 1.0, "mim_weight": 0.0}, "for pretrain with --mim-weight"),
                       ({"instance_weight": 1.0, "mask_strategy": "attention"}, "masks drawn per view")):
        with pytest.raises(MedflipError, match=words):
            TrainConfig(**{**base, **bad}).validate()
