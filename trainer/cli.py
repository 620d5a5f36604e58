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

from medflip_core.errors import MedflipError
from medflip_core.events import ErrorEvent, EventWriter
from trainer.config import add_config_flags, resolve_config
from trainer.runtime import CancelFlag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="job", required=True)
    for job, help_text in (("pretrain", "MedFLIP image-text pre-training"),
                           ("finetune", "fine-tune the image tower on a labelled folder")):
        add_config_flags(sub.add_parser(job, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
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
