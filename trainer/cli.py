"""`python -m trainer pretrain|finetune [options]` (also `medflip train ...`).

Events go to stdout as JSON lines (or --events FILE); human-readable progress goes to stderr.
Exit codes: 0 completed or cancelled, 2 bad configuration or data, 3 training failed (e.g. NaN loss).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from medflip_core.errors import MedflipError, quiet_decoder_logs
from medflip_core.events import ErrorEvent, EventWriter
from trainer.config_flags import add_config_flags, resolve_config
from trainer.runtime import CancelFlag

JOBS = {
    "pretrain": ("MedFLIP image-text pre-training on radiographs and reports",
                 "(--images FOLDER [FOLDER ...] --corpus PATH | --pairs-csv FILE)"),
    "finetune": ("fine-tune the image tower and a classification head on a labelled folder or label CSV",
                 "--images FOLDER_OR_CSV [--init-from BUNDLE]"),
}
LENGTH = "--epochs N | --max-steps N | --budget-minutes M"
EPILOG = """Options may also come from --config FILE (YAML, TOML or JSON); flags override the file.
Exit codes: 0 completed or cancelled, 2 bad configuration or data, 3 training failed (e.g. NaN loss).
Research use only; not for diagnosis."""


class _TrainerParser(argparse.ArgumentParser):
    """`--help` without a job also lists the jobs' options: both jobs take the same flags, and the sections'
    titles say which job uses which."""

    job_parser: argparse.ArgumentParser | None = None

    def format_help(self) -> str:
        text = super().format_help()
        if self.job_parser is None:
            return text
        formatter = self.job_parser._get_formatter()
        formatter.add_text("Options of both jobs (`JOB --help` lists them too):")
        for group in self.job_parser._action_groups:
            actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
            if not actions:
                continue
            formatter.start_section("general" if group is self.job_parser._optionals else group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(actions)
            formatter.end_section()
        return f"{text}\n{formatter.format_help()}"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """`prog` is how the help names the command (`medflip train` passes MEDFLIP_TRAINER_PROG)."""
    prog = prog or os.environ.get("MEDFLIP_TRAINER_PROG") or "python -m trainer"
    parser = _TrainerParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="job", required=True, metavar="JOB", parser_class=argparse.ArgumentParser)
    for job, (help_text, needs) in JOBS.items():
        job_parser = sub.add_parser(job, help=help_text, description=help_text + ".", epilog=EPILOG,
                                    usage=f"%(prog)s {needs} ({LENGTH}) [options]",
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_flags(job_parser)
        parser.job_parser = parser.job_parser or job_parser
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    quiet_decoder_logs()  # a skipped file is reported in our words, not with a decoder's traceback
    args = build_parser().parse_args(argv)
    events = EventWriter(getattr(args, "events", None) or "-")
    cancel = CancelFlag()
    cancel.install()
    try:
        cfg = resolve_config(args.job, args)
        events.close()
        events = EventWriter(cfg.events, enabled=int(os.environ.get("RANK", "0")) == 0)
        if cfg.job == "pretrain":
            from trainer.pretrain import run_pretrain

            result = run_pretrain(cfg, events, cancel)
        else:
            from trainer.finetune import run_finetune

            result = run_finetune(cfg, events, cancel)
        print(f"{result.status} at step {result.step}; checkpoint: {result.checkpoint}", file=sys.stderr)
        return 0
    except MedflipError as exc:
        step = getattr(exc, "step", None)
        events.emit(ErrorEvent(message=str(exc), kind=type(exc).__name__, step=step))
        print(f"error: {exc}", file=sys.stderr)
        return 3 if type(exc).__name__ == "NonFiniteLoss" else 2
    except Exception as exc:  # the GUI must see every failure as an event, not only a traceback
        events.emit(ErrorEvent(message=f"{type(exc).__name__}: {exc}", kind="internal",
                               traceback=traceback.format_exc(limit=8)))
        traceback.print_exc()
        return 3
    finally:
        events.close()
