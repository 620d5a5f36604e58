from __future__ import annotations

import argparse

import pytest

from medflip_core.errors import MedflipError
from trainer.config import TrainConfig
from trainer.config_flags import add_config_flags, resolve_config


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(argv)


def test_flags_override_file(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("images: [a]\ncorpus: r.tgz\nmask-ratio: 0.5\nbatch_size: 8\nmax_steps: 10\n")
    cfg = resolve_config("pretrain", _parse(["--config", str(cfg_file), "--mask-ratio", "0.75"]))
    assert cfg.mask_ratio == 0.75 and cfg.batch_size == 8 and cfg.images == ["a"] and cfg.max_steps == 10


def test_toml_and_json_files(tmp_path):
    (tmp_path / "c.toml").write_text('images = ["x"]\ncorpus = "c"\nepochs = 1.5\n')
    assert resolve_config("pretrain", _parse(["--config", str(tmp_path / "c.toml")])).epochs == 1.5
    saved = TrainConfig(images=["x"], corpus="c", max_steps=3).to_dict()
    import json

    (tmp_path / "c.json").write_text(json.dumps(saved))
    assert resolve_config("pretrain", _parse(["--config", str(tmp_path / "c.json")])).max_steps == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images", "a", "--corpus", "c", "--max-steps", "1", "--mask-ratio", "0.95"], "mask-ratio"),
        (["--images", "a", "--max-steps", "1"], "corpus"),
        (["--corpus", "c", "--max-steps", "1"], "images"),
        (["--images", "a", "--corpus", "c"], "how long"),
        (["--images", "a", "--corpus", "c", "--max-steps", "1", "--loss", "mse"], "loss"),
        (["--images", "a", "--corpus", "c", "--max-steps", "1", "--decode-in", "processes"], "--num-workers 1"),
        (["--images", "a", "--corpus", "c", "--max-steps", "1", "--decode-in", "gpu"], "decode-in"),
    ],
)
def test_bad_configs_say_what_is_wrong(argv, message):
    with pytest.raises(MedflipError, match=message):
        resolve_config("pretrain", _parse(argv))


def test_unknown_keys_in_file_rejected(tmp_path):
    (tmp_path / "c.yaml").write_text("images: [a]\ncorpus: c\nmax_steps: 1\nmask_ration: 0.5\n")
    with pytest.raises(MedflipError, match="mask_ration"):
        resolve_config("pretrain", _parse(["--config", str(tmp_path / "c.yaml")]))


def test_svd_power_iteration_default_matches_the_loss():
    from medflip_core.model.losses import SVD_POWER_ITERS

    assert TrainConfig().svd_power_iters == SVD_POWER_ITERS


def test_model_shape_is_nested_and_flat_keys_and_flags_still_work(tmp_path):
    (tmp_path / "old.yaml").write_text("images: [a]\ncorpus: c\nmax_steps: 1\nimage_size: 112\n"
                                       "vision: vit_small_patch16_224\n")
    cfg = resolve_config("pretrain", _parse(["--config", str(tmp_path / "old.yaml"), "--embed-dim", "128"]))
    assert (cfg.model.image_size, cfg.model.vision, cfg.model.embed_dim) == (112, "vit_small_patch16_224", 128)
    saved = cfg.to_dict()
    assert "image_size" not in saved and saved["model"]["image_size"] == 112
    assert TrainConfig.from_dict(saved) == cfg
    with pytest.raises(MedflipError, match="imag_size"):
        TrainConfig.from_dict({**saved, "model": {**saved["model"], "imag_size": 3}})


def test_init_from_a_bundle_or_checkpoint_supplies_the_model_shape(tmp_path):
    import json

    from medflip_core.resources import resources_dir

    bundle = resources_dir() / "models" / "medflip-default"
    shipped = json.loads((bundle / "manifest.json").read_text())["model"]
    cfg = resolve_config("finetune", _parse(["--images", "a", "--max-steps", "1", "--image-size", "96",
                                             "--init-from", str(bundle / "weights.safetensors")]))
    assert cfg.model.image_size == shipped["image_size"] and cfg.model.embed_dim == shipped["embed_dim"]
    ckpt = tmp_path / "step-00000004"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"step": 4, "model_config": {"image_size": 112, "embed_dim": 64}}))
    cfg = resolve_config("finetune", _parse(["--images", "a", "--max-steps", "1", "--init-from", str(ckpt)]))
    assert (cfg.model.image_size, cfg.model.embed_dim) == (112, 64)
    with pytest.raises(MedflipError, match="does not exist"):
        resolve_config("finetune", _parse(["--images", "a", "--max-steps", "1", "--init-from", str(tmp_path / "no")]))


def test_pretraining_from_a_checkpoint_may_change_its_pooling_but_not_its_shape(tmp_path):
    """A reconstruction phase trains no pooling, so the image-text phase after it may pool the patch tokens; the
    weights' shape still comes from the checkpoint, and fine-tuning keeps its base model's embedding."""
    import json

    ckpt = tmp_path / "step-00000004"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"step": 4, "model_config": {"image_size": 112, "embed_dim": 64,
                                                                             "vision_pool": "token"}}))
    base = ["--images", "a", "--max-steps", "1", "--init-from", str(ckpt)]
    cfg = resolve_config("pretrain", _parse([*base, "--corpus", "c", "--vision-pool", "avg", "--embed-dim", "32"]))
    assert (cfg.model.vision_pool, cfg.model.embed_dim, cfg.model.image_size) == ("avg", 64, 112)
    assert resolve_config("pretrain", _parse([*base, "--corpus", "c"])).model.vision_pool == "token"
    assert resolve_config("finetune", _parse([*base, "--vision-pool", "avg"])).model.vision_pool == "token"


def test_removed_batch_svd_reading_is_a_clear_error():
    with pytest.raises(MedflipError, match="batch SVD reading was removed"):
        resolve_config("pretrain", _parse(["--images", "a", "--corpus", "c", "--max-steps", "1",
                                           "--svd-reading", "batch"]))
