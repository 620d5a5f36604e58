"""The `medflip` command line. Results go to stdout (`--json` for machines), logs to stderr.

Every failure a user can cause ends in one readable line on stderr and a non-zero exit code.

Why about 450 lines: one short function per sub-command plus the argument table; each command's work lives in
the layer below (inference, finetune, evaluation, bench), so this file is the command surface and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medflip_core import __version__
from medflip_core.bench import BENCHMARKS
from medflip_core.errors import MedflipError, quiet_decoder_logs

log = logging.getLogger("medflip")

RESEARCH_NOTICE = "Research use only; not for diagnosis."


def _print_json(data: Any) -> None:
    if sys.stdout is None:  # a windowed executable: nobody to print to
        return
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _print_result(args: argparse.Namespace, data: Any, as_text: Callable[[Any], str]) -> int:
    """--json prints the data as it is; otherwise the human-readable text."""
    if args.json:
        _print_json(data)
    else:
        print(as_text(data))
    return 0


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


def cmd_gpu(args: argparse.Namespace) -> int:
    from medflip_core.inference.gpu_runtime import diagnose

    report = diagnose()

    def text(r: dict) -> str:
        lines = [f"ONNX Runtime {r['onnxruntime']}",
                 f"NVIDIA driver {r['driver']}: {'found' if r['driver_error'] is None else 'not found'}"]
        if not r["runtimes"]:
            lines.append("CUDA runtime: none found (install the trainer add-on, or set MEDFLIP_CUDA_RUNTIME)")
        for rt in r["runtimes"]:
            found = sum(v is not None for v in rt["libraries"].values())
            lines.append(f"CUDA runtime of {rt['source']}: {rt['root']}")
            lines.append(f"  provider built for ONNX Runtime {rt['onnxruntime'] or '(unknown)'}; "
                         f"{found} of {len(rt['libraries'])} CUDA libraries in its folder"
                         + (f" (from the system: {', '.join(rt['missing'])})" if rt["missing"] else ""))
            if rt.get("loaded"):
                lines.append(f"  loaded: {rt['gpus']} GPU(s)")
            elif rt["problem"]:
                lines.append(f"  not usable: {rt['problem']}")
        lines.append(r["device"])
        return "\n".join(lines)

    return _print_result(args, report, text)


def cmd_label(args: argparse.Namespace) -> int:
    from medflip_core.labeler import explain_sentence, label_report
    from medflip_core.labeler.labels import CHEXPERT_LABELS

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
    from medflip_core.bench import run_benchmark

    return run_benchmark(args.what, list(args.bench_args) + (["--json"] if args.json else []))


def _engine(model: str | None):
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    return Engine(resolve_model(model), threads=os.cpu_count() or 1)


def _labels(arg: str | None, engine) -> list[str]:
    if arg:
        return [x.strip() for x in arg.split(",") if x.strip()]
    return engine.bundle.default_labels


def cmd_classify(args: argparse.Namespace) -> int:
    from medflip_core.inference.batch import classify_files
    from medflip_core.inference.label_specificity import alike_notes
    from medflip_core.inference.validated_labels import validation_notes
    from medflip_core.inference.zeroshot import outside_label_space, uncalibrated_warning

    engine = _engine(args.model)
    if engine.classifier is not None and not args.labels:  # a classifier bundle scores its own classes
        from medflip_core.finetune.command import print_classifier_results

        return print_classifier_results(engine, args.paths, args.json)
    labels = _labels(args.labels, engine)
    results = classify_files(engine, args.paths, labels)
    failed = sum("error" in r for r in results)
    outside = uncalibrated_warning(labels)
    unvalidated = validation_notes(engine.bundle.manifest, labels)
    alike = alike_notes(engine, labels)
    if args.json:
        _print_json({"model": engine.bundle.name, "labels": labels, "notice": RESEARCH_NOTICE, "results": results,
                     "uncalibrated_labels": outside_label_space(labels), "unvalidated_labels": unvalidated,
                     "abnormality_like_labels": alike})
    else:
        print(f"# model {engine.bundle.name}. {RESEARCH_NOTICE}")
        if failed < len(results):  # notes about the scores, only when something was scored (not above an error)
            if outside:
                print(f"# warning: {outside}")
            for label, why in unvalidated.items():
                print(f"# note: {label}: {why}")
            for label, why in alike.items():
                print(f"# note: {label} ∥ abnormality: {why}")
        for r in results:
            if "error" in r:
                print(f"{r['path']}: ERROR {r['error']}")
                continue
            ranked = sorted(r["scores"].items(), key=lambda kv: -kv[1])
            print(f"{r['path']}: " + ", ".join(f"{k} {v:.3f}" for k, v in ranked))
            for w in [*r["warnings"], *r.get("cautions", [])]:
                print(f"    warning: {w}")
            for note in r.get("notes", []):
                print(f"    note: {note}")
    return 1 if failed else 0


def _corpus_progress(corpus: str):
    """progress(done, total) that tells stderr, every tenth of the way, how far a corpus's embedding is (20,000
    sentences take about a minute on a laptop CPU, and a silent minute looks like a hang)."""
    shown = {"tenth": -1}

    def progress(done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth > shown["tenth"]:
            shown["tenth"] = tenth
            print(f"embedding the report sentences of {corpus}: {done:,} / {total:,}", file=sys.stderr, flush=True)

    return progress


def cmd_retrieve(args: argparse.Namespace) -> int:
    from medflip_core.imaging import load_image
    from medflip_core.inference.image_ood import all_warnings, layout_features

    engine = _engine(args.model)
    bank = engine.bank_from_corpus(args.corpus, progress=_corpus_progress(args.corpus)) if args.corpus else None
    image = load_image(args.path)
    embedded = engine.embed_images([image])
    emb = embedded.embedding[0]
    hits = engine.retrieve(emb, args.k, bank)
    # a leg film's sentences are the bank's nearest, no reading of it
    warnings = all_warnings(image, image.pixels, emb, engine.ood_reference,
                            layout_features(embedded.patch_tokens, embedded.grid))
    if args.json:
        _print_json({"model": engine.bundle.name, "path": args.path, "warnings": warnings,
                     "hits": [{"rank": i + 1, "sentence": h.sentence, "score": h.score} for i, h in enumerate(hits)]})
    else:
        for w in warnings:
            print(f"# warning: {w} (out of the model's distribution: these sentences are no reading of it)")
        for i, h in enumerate(hits):
            print(f"{i + 1:>3}. {h.score:.3f}  {h.sentence}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from medflip_core.evaluation.evaluate import evaluate_folder, format_evaluation, write_per_image_csv

    engine = _engine(args.model)
    if engine.classifier is not None:  # a classifier bundle is evaluated on its own classes
        from medflip_core.finetune.command import evaluate_classifier_command

        return evaluate_classifier_command(engine, args)
    prompts = dict(p.split("=", 1) for p in args.prompt or [])
    result = evaluate_folder(engine, args.data_dir, prompts=prompts, positive=args.positive, n_boot=args.n_boot,
                             per_image=bool(args.per_image))
    if args.per_image:
        write_per_image_csv(result, args.per_image)
        del result["per_image"]
        log.info("per-image probabilities written to %s", args.per_image)
    return _print_result(args, result, format_evaluation)


def cmd_retrieval_eval(args: argparse.Namespace) -> int:
    from medflip_core.evaluation.evaluate import format_retrieval, retrieval_eval

    engine = _engine(args.model)
    ks = [int(k) for k in args.k.split(",")]
    prompts = dict(p.split("=", 1) for p in args.prompt or [])
    result = retrieval_eval(engine, args.data_dir, args.corpus, ks=ks, class_labels=prompts,
                            per_class=args.per_class, n_boot=args.n_boot, patient_pattern=args.patient_pattern)
    return _print_result(args, result, format_retrieval)


def cmd_split(args: argparse.Namespace) -> int:
    from medflip_core.data.image_folder import (
        index_image_folder,
        load_class_map,
        materialise_split,
        patient_split,
    )

    records = index_image_folder(args.data_dir, load_class_map(args.class_map), args.patient_pattern)
    train, val = patient_split(records, args.val_fraction, args.seed)
    out = Path(args.out_dir)
    materialise_split(train, out / "train")
    materialise_split(val, out / "val")
    summary = {"train": len(train), "val": len(val), "val_patients": len({r.patient_id for r in val}),
               "out_dir": str(out), "seed": args.seed, "val_fraction": args.val_fraction}
    if args.json:
        _print_json(summary)
    else:
        print(f"{summary['train']} training and {summary['val']} validation images "
              f"({summary['val_patients']} validation patients) linked under {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from medflip_core.processes import TrainerMissing, torch_importable, trainer_addon, trainer_missing

    if not torch_importable():  # the light app: the trainer add-on (torch) exports, or we say how to get it
        addon = trainer_addon()
        if addon is None:
            raise TrainerMissing(f"Exporting a checkpoint needs PyTorch. {trainer_missing()}")
        import subprocess

        forward = ["export", args.checkpoint, args.out_dir]
        forward += [f for f, on in (("--no-bank", args.no_bank), ("--half-weights", args.half_weights),
                                    ("--quantize-text", args.quantize_text)) if on]
        forward += [x for flag, v in (("--name", args.name), ("--bank-corpus", args.bank_corpus)) if v
                    for x in (flag, v)]
        return subprocess.call([str(addon), "--medflip", *forward])
    from medflip_core.model.export import export_checkpoint_cli

    path = export_checkpoint_cli(args.checkpoint, args.out_dir, name=args.name, bank_corpus=args.bank_corpus,
                                 no_bank=args.no_bank, half_weights=args.half_weights,
                                 quantize_text=args.quantize_text)
    print(f"bundle written to {path}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from medflip_core.processes import TrainerMissing, torch_importable, trainer_addon, trainer_missing

    if not torch_importable():  # the light app: the trainer add-on (torch) runs the decoder
        addon = trainer_addon()
        if addon is None:
            raise TrainerMissing(f"Reconstructing needs PyTorch. {trainer_missing()}")
        import subprocess

        return subprocess.call([str(addon), "--medflip", *sys.argv[sys.argv.index("reconstruct"):]])
    from medflip_core.imaging import load_image
    from medflip_core.model.reconstruct import reconstruct, write_png

    keep = [int(i) for i in args.keep.split(",") if i.strip()] if args.keep else None
    rec = reconstruct(args.run, load_image(args.image), keep=keep, keep_grid=args.keep_grid, ratio=args.mask_ratio,
                      strategy=args.strategy, seed=args.seed)
    write_png(rec, args.out)
    if args.json:
        print(json.dumps({"out": str(args.out), "loss": rec.loss, "kept": int(rec.keep.size), "caption": rec.caption,
                          "note": rec.note}))
    else:
        print(f"{args.out}: {rec.caption}; reconstruction loss of the dropped patches {rec.loss:.3f} "
              f"({rec.keep.size} patches kept){'; ' + rec.note if rec.note else ''}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """The trainer runs as its own process (the layer above this package), with this process's stdout and
    stderr; its exit code is ours. Its arguments, --help included, pass through untouched."""
    import signal
    import subprocess

    from medflip_core.processes import trainer_command

    program, arguments = trainer_command(args.trainer_args)
    env = {**os.environ, "MEDFLIP_TRAINER_PROG": "medflip train"}  # the trainer's usage lines name this command
    with subprocess.Popen([program, *arguments], env=env) as proc:
        # Cancel (SIGTERM) reaches the trainer, which checkpoints and says so, and we wait for it
        signal.signal(signal.SIGTERM, lambda _sig, _frame: proc.send_signal(signal.SIGTERM))
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # the trainer got the same Ctrl-C: wait while it saves a checkpoint
                continue


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every option's help ends with its default when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings
                or isinstance(action, argparse._HelpAction | argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def reconstruct_mask_ratio(text: str) -> float:
    """--mask-ratio of `medflip reconstruct`: a share of the patches dropped, above 0 and at most the trainer's
    maximum; anything else ends in argparse's usage line and a sentence naming the range (exit code 2)."""
    from medflip_core.masking import MAX_MASK_RATIO, mask_ratio_problem

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give the share of each image's patches "
                                         f"dropped, above 0 and at most {MAX_MASK_RATIO:g}") from None
    problem = mask_ratio_problem(value, above_zero=True)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


JSON_HELP = "print the result as JSON on stdout (for scripts) instead of text"
MODEL_HELP = "model name or bundle folder (default: medflip-default)"
PATIENT_PATTERN_HELP = ("regex whose group 1 is the patient id in a file name (default: Kermany personN, NIH "
                        "8 digits, patientN, IM-xxxx, else the file name)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medflip", description=f"MedFLIP command line. {RESEARCH_NOTICE}",
                                     epilog="`medflip COMMAND --help` describes a command's options.")
    parser.add_argument("--version", action="version", version=f"medflip {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("info", help="describe an image file or folder (no patient-identifying tags)")
    p.add_argument("path", help="a DICOM/PNG/JPEG file, or a folder (searched recursively)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("gpu", help="where inference runs (GPU or CPU) and why; which CUDA runtime was found",
                       description="Looks for the NVIDIA driver and for ONNX Runtime CUDA runtimes (this "
                       "installation, MEDFLIP_CUDA_RUNTIME, the trainer add-on) and tries to load each.")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_gpu)

    p = sub.add_parser("label", help="label a report sentence with the knowledge-extraction labeler")
    p.add_argument("text", nargs="+", help="the sentence (several words are joined with spaces)")
    p.add_argument("--json", action="store_true", help=JSON_HELP + ", with the phrases that gave each label")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("bench", help=f"benchmarks that print figures: {', '.join(BENCHMARKS)}",
                       epilog="\n".join(f"  {name:<11} {b.help}" for name, b in BENCHMARKS.items()))
    p.add_argument("what", choices=list(BENCHMARKS), metavar="NAME", help="the benchmark to run (listed below)")
    p.add_argument("--json", action="store_true", help="the benchmark's figures as JSON")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of the benchmark (see its --help)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("classify", help="zero-shot label scores for images")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--labels", help='comma-separated labels, e.g. "No Finding,Pneumonia" (default: the model\'s '
                                    "labels; a classifier bundle scores its own classes)")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("retrieve", help="report sentences that best match an image")
    p.add_argument("path", help="an image file")
    p.add_argument("--corpus", help="Open-i XML folder/tgz, CSV or TXT (default: the bundle's sentence bank)")
    p.add_argument("--k", type=int, default=5, help="how many sentences to show")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_retrieve)

    p = sub.add_parser("evaluate", help="zero-shot evaluation on an ImageFolder (one sub-folder per class)")
    p.add_argument("data_dir", help="an ImageFolder (one sub-folder per class); classifier bundles also take a "
                                    "label CSV")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--prompt", action="append", metavar="CLASS=TEXT",
                   help="label text for a class folder, repeatable (default: the folder name)")
    p.add_argument("--positive", help="positive class folder of a binary task, whose ROC AUC is reported "
                                      "(default: none, the AUC of every class and their macro average)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (of patients) for the CIs")
    p.add_argument("--per-image", metavar="OUT.csv", help="also write every image's class probabilities")
    p.add_argument("--image-root", help="classifier bundles: folder a label CSV's image paths start from "
                                        "(default: the CSV's folder)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_evaluate)

    from medflip_core.finetune.command import add_finetune_parser

    add_finetune_parser(sub)

    p = sub.add_parser("retrieval-eval", help="Precision@K of image->sentence retrieval on an ImageFolder")
    p.add_argument("data_dir", help="an ImageFolder (one sub-folder per class)")
    p.add_argument("--corpus", required=True, help="the report corpus the sentences come from (Open-i XML "
                                                   "folder/tgz, CSV or TXT)")
    p.add_argument("--k", default="1,2,5,10", help="the K of Precision@K, comma-separated")
    p.add_argument("--prompt", action="append", metavar="CLASS=LABEL",
                   help="label-space name of a class folder, repeatable (default: the built-in class map, e.g. "
                        "PNEUMONIA -> Pneumonia, else the folder name)")
    p.add_argument("--per-class", type=int, default=200, help="sentences per class in the balanced pool")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (of patients) for the CIs")
    p.add_argument("--patient-pattern", help=PATIENT_PATTERN_HELP)
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_retrieval_eval)

    p = sub.add_parser("split", help="patient-disjoint train/val split of an ImageFolder, as symlinked folders")
    p.add_argument("data_dir", help="an ImageFolder (one sub-folder per class)")
    p.add_argument("out_dir", help="where train/ and val/ are made (symbolic links to the images)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of the PATIENTS put in val/")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split")
    p.add_argument("--class-map", help='JSON file {"FOLDER": ["Label", ...]} merged over the built-in map '
                                       "(default: the built-in map)")
    p.add_argument("--patient-pattern", help=PATIENT_PATTERN_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("export", help="trainer checkpoint -> model bundle (ONNX + manifest)")
    p.add_argument("checkpoint", help="a checkpoint folder, or a run folder (its latest checkpoint)")
    p.add_argument("out_dir", help="the bundle folder to write")
    p.add_argument("--name", help="model name in the manifest (default: the folder name)")
    p.add_argument("--bank-corpus", help="report corpus for the sentence bank (default: the shipped IU archive)")
    p.add_argument("--no-bank", action="store_true", help="write no sentence bank (retrieval then needs --corpus)")
    p.add_argument("--half-weights", action="store_true", help="store the safetensors weights as float16")
    p.add_argument("--quantize-text", action="store_true", help="int8 dynamic quantisation of the text encoder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reconstruct", help="a pre-training run's decoder fills in the patches a mask drops (torch)")
    p.add_argument("run", help="a run folder (its latest checkpoint) or a checkpoint trained with --mim-weight > 0")
    p.add_argument("image", help="a DICOM, PNG or JPEG")
    p.add_argument("--out", required=True, help="the PNG to write: model input | kept patches | reconstruction")
    p.add_argument("--keep", help="the kept patch indices, comma-separated (default: a mask is drawn)")
    p.add_argument("--keep-grid", type=int, help="patches per side of the grid --keep refers to (another grid than "
                                                 "the run's: the mask is drawn again)")
    p.add_argument("--mask-ratio", type=reconstruct_mask_ratio, default=0.75,
                   help="share of patches dropped, above 0 and at most 0.9 (default: 0.75)")
    p.add_argument("--strategy", default="random", choices=["random", "integrity", "attention"],
                   help="how the mask is drawn without --keep; attention needs --keep (default: random)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask drawn without --keep (default: 0)")
    p.add_argument("--json", action="store_true", help="one JSON line: the PNG, the loss, patches kept, the caption")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("train", help="run the trainer: medflip train pretrain|finetune [options]", add_help=False,
                       description="`medflip train --help` and `medflip train JOB --help` show the trainer's help.")
    p.add_argument("trainer_args", nargs=argparse.REMAINDER, metavar="JOB [options]",
                   help="pretrain or finetune and the trainer's options (`medflip train pretrain --help`)")
    p.set_defaults(func=cmd_train)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Like parse_args, except that `medflip train` hands every argument to the trainer, even one that comes
    before the job (argparse's REMAINDER leaves `train --help` out: the trainer, not we, answers it)."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "train":
        args.trainer_args = [*extra, *args.trainer_args]  # the unknown ones all came before REMAINDER's first
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = parse_args(build_parser(), argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # a decoder's own complaint (with its traceback) about a bad file is not for the user,
        quiet_decoder_logs()  # who reads our sentence; -v shows it
    try:
        code = int(args.func(args))
        if sys.stdout is not None:  # None in a windowed executable
            sys.stdout.flush()  # a closed pipe is found here, not at interpreter exit
        return code
    except MedflipError as exc:
        print(f"medflip: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `medflip ... | head` closed the pipe: stop quietly, as other command-line tools do
        with contextlib.suppress(OSError, ValueError, AttributeError):  # no second error at interpreter exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
