"""The trainer's --help documents every option: what it does, its choices and its default, in sections."""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, fields

import pytest

from medflip_core.errors import MedflipError
from medflip_core.model.config import ModelConfig
from trainer.cli import build_parser
from trainer.config import CHOICES, TrainConfig
from trainer.config_flags import FLAG_GROUPS, FLAG_HELP, add_config_flags, resolve_config


def _job_parser(job: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[job]


def _option_help(help_text: str, flag: str) -> str:
    """The help paragraph of one option in a --help text (its lines up to the next option or section)."""
    match = re.search(rf"^  {re.escape(flag)}\b.*?(?=^  -|^\S|\Z)", help_text, flags=re.M | re.S)
    assert match, f"{flag} is not in the help"
    return " ".join(match.group(0).split())


def test_every_config_field_is_documented_in_a_known_section():
    names = [f.name for f in [*fields(TrainConfig), *fields(ModelConfig)] if f.name not in ("job", "model")]
    assert sorted(set(names) - set(FLAG_HELP)) == []  # a new field needs its help (and section) here
    assert sorted(set(FLAG_HELP) - set(names)) == []  # no help left for a removed field
    assert {group for group, _ in FLAG_HELP.values()} <= set(FLAG_GROUPS)


@pytest.mark.parametrize("job", ["pretrain", "finetune"])
def test_every_option_has_help_with_its_default_and_choices(job):
    parser = _job_parser(job)
    text = parser.format_help()
    defaults = {**asdict(TrainConfig()), **asdict(ModelConfig())}
    options = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    assert len(options) == len(FLAG_HELP) + 1  # every field, and --config
    for action in options:
        assert action.help and action.help.strip(), action.option_strings
        flag = action.option_strings[0]
        shown = _option_help(text, flag)
        if flag == "--config":
            continue
        name = action.dest
        assert "default" in shown, flag
        default = defaults[name]
        if default not in (None, [], False) and f"default: {default})" not in shown:
            pytest.fail(f"{flag}: the help does not show its default {default!r}: {shown}")
        if name in CHOICES:
            assert f"choices: {', '.join(CHOICES[name])}" in shown, flag
    # the sections the options are grouped in
    for title, _ in FLAG_GROUPS.values():
        assert f"\n{title}:\n" in text
    assert "(default: 0.75)" in _option_help(text, "--mask-ratio")
    assert "(default: 32)" in _option_help(text, "--batch-size")
    assert "choices: random, integrity, attention (default: random)" in _option_help(text, "--mask-strategy")


def test_the_help_without_a_job_lists_the_jobs_and_their_options():
    text = build_parser(prog="medflip train").format_help()
    assert text.startswith("usage: medflip train")
    assert "pretrain" in text and "finetune" in text
    assert "(default: 0.75)" in _option_help(text, "--mask-ratio")
    assert "torchrun" in text  # how to run on several GPUs


def test_validation_still_refuses_bad_values_from_flags_and_files(tmp_path):
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    base = ["--images", "a", "--corpus", "c", "--max-steps", "1"]
    args = parser.parse_args([*base, "--mask-ratio", "0.3"])
    assert args.batch_size is None  # unset flags stay None: a config file's values win over the defaults
    assert resolve_config("pretrain", args).mask_ratio == 0.3
    with pytest.raises(MedflipError, match="--vision-pool must be one of token, avg, got 'max'"):
        resolve_config("pretrain", parser.parse_args([*base, "--vision-pool", "max"]))
    with pytest.raises(MedflipError, match="--mask-strategy must be one of random, integrity, attention"):
        resolve_config("pretrain", parser.parse_args([*base, "--mask-strategy", "middle"]))
    (tmp_path / "run.yaml").write_text("images: [a]\ncorpus: c\nmax_steps: 1\nschedule: linear\n")
    with pytest.raises(MedflipError, match="--schedule must be one of cosine, constant, got 'linear'"):
        resolve_config("pretrain", parser.parse_args(["--config", str(tmp_path / "run.yaml")]))
