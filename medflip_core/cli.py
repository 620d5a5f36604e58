"""The `medflip` command line. Results go to stdout (`--json` for machines), logs to stderr.

Every failure a user can cause ends in one readable line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from medflip_core import __version__
from medflip_core.errors import MedflipError

log = logging.getLogger("medflip")

RESEARCH_NOTICE = "Research use only; not for diagnosis."


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def cmd_info(args: argparse.Namespace) -> int:
    from medflip_core.imaging import iter_image_files, load_image

    results = []
    for path in iter_image_files(args.path):
        try:
            rg = load_image(path)
        except MedflipError as exc:
            results.append({"path": str(path), "error": str(exc)})
            continue
        md = rg.metadata
        results.append({
            "path": str(path), "format": md.format, "modality": md.modality, "body_part": md.body_part,
            "view": md.view_position, "photometric": md.photometric, "size": [md.rows, md.columns],
            "bits_stored": md.bits_stored, "pixel_spacing": md.pixel_spacing,
            "window": {"center": md.window.center, "width": md.window.width, "source": md.window.source},
            "transfer_syntax": md.transfer_syntax, "notes": list(rg.notes),
        })
    if args.json:
        _print_json(results)
    else:
        for r in results:
            if "error" in r:
                print(f"{r['path']}: ERROR {r['error']}")
                continue
            w = r["window"]
            print(f"{r['path']}: {r['format']} {r['modality'] or ''} {r['photometric'] or ''} "
                  f"{r['size'][1]}x{r['size'][0]} window C={w['center']:.4g} W={w['width']:.4g} ({w['source']})"
                  f"{' [' + '; '.join(r['notes']) + ']' if r['notes'] else ''}")
    return 1 if any("error" in r for r in results) else 0


def cmd_label(args: argparse.Namespace) -> int:
    from medflip_core.labeler import explain_sentence, label_report
    from medflip_core.labels import CHEXPERT_LABELS

    text = " ".join(args.text)
    vec = label_report(text)
    status = {1.0: "positive", -1.0: "uncertain"}
    found = {name: status[float(v)] for name, v in zip(CHEXPERT_LABELS, vec, strict=True) if v != 0}
    mentions = [{"label": m.label, "phrase": m.phrase, "status": m.status} for m in explain_sentence(text)]
    if args.json:
        _print_json({"labels": found, "mentions": mentions})
    else:
        for name, st in found.items():
            print(f"{name}: {st}")
        if not found:
            print("(no labels)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "labeler":
        from medflip_core.labeler.agreement import main as agreement_main

        return agreement_main(([] if args.reports is None else ["--reports", args.reports])
                              + (["--json"] if args.json else []))
    raise MedflipError(f"unknown benchmark {args.what}")


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.cli import main as trainer_main

    return trainer_main(args.trainer_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medflip", description=f"MedFLIP command line. {RESEARCH_NOTICE}")
    parser.add_argument("--version", action="version", version=f"medflip {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe an image file or folder (no patient-identifying tags)")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("label", help="label a report sentence with the knowledge-extraction labeler")
    p.add_argument("text", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("bench", help="benchmarks that print figures")
    p.add_argument("what", choices=["labeler"])
    p.add_argument("--reports", default=None, help="report corpus (default: the IU reports in ../shared/data)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="run the trainer: medflip train pretrain|finetune [options]", add_help=False)
    p.add_argument("trainer_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)
    return parser



def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except MedflipError as exc:
        print(f"medflip: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def default_shared_data() -> Path:
    """../shared/data beside the checkout, or $MEDFLIP_SHARED_DATA."""
    env = os.environ.get("MEDFLIP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


if __name__ == "__main__":
    sys.exit(main())
