from __future__ import annotations

import argparse

import pytest

from medflip_core.errors import MedflipError
from trainer.config import TrainConfig, add_config_flags, resolve_config


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
