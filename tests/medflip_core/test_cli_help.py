"""`medflip COMMAND --help` documents every option, and `medflip train --help` shows the trainer's options."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from medflip_core.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def medflip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medflip_core.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _option_help(help_text: str, flag: str) -> str:
    match = re.search(rf"^  {re.escape(flag)}\b.*?(?=^  -|^\S|\Z)", help_text, flags=re.M | re.S)
    assert match, f"{flag} is not in the help"
    return " ".join(match.group(0).split())


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_of_every_command_says_what_it_does_and_its_default(command):
    parser = _subparsers()[command]
    text = parser.format_help()
    for action in parser._actions:
        assert action.help and action.help.strip(), f"medflip {command}: {action.option_strings or action.dest}"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            shown = _option_help(text, action.option_strings[0])
            assert "default" in shown, f"medflip {command}: {shown}"
            if "(default" not in (action.help or ""):  # the formatter added it from the parser
                assert f"(default: {action.default})" in shown


def test_train_help_is_the_trainers_help():
    proc = medflip("train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: medflip train") and "pretrain" in proc.stdout
    mask_ratio = re.search(r"--mask-ratio MASK_RATIO\s+(.*?)\n  -", proc.stdout, flags=re.S)
    assert mask_ratio and "(default: 0.75)" in " ".join(mask_ratio.group(1).split())
    assert "unrecognized" not in proc.stderr


@pytest.mark.parametrize("job", ["pretrain", "finetune"])
def test_train_job_help_and_short_h(job):
    proc = medflip("train", job, "-h")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: medflip train {job}")
    assert "choices: medflip, medclip, infonce (default: medflip)" in " ".join(proc.stdout.split())


def test_options_before_the_job_still_reach_the_trainer_and_others_are_refused(capsys):
    proc = medflip("train", "--max-steps", "1", "pretrain")
    assert proc.returncode == 2 and "invalid choice: '1'" in proc.stderr  # the trainer's own parser answered
    with pytest.raises(SystemExit) as stop:
        main(["info", "x.dcm", "--bogus"])
    assert stop.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
