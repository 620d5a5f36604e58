"""The command-line side of fine-tuning: `medflip finetune`, and `medflip classify` / `medflip evaluate` when the
model is a classifier bundle. cli.py only wires these in."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import traceback
from typing import Any

from medflip_core.errors import MedflipError
from medflip_core.events import Event, EventWriter, event_fields
from medflip_core.finetune.validation import per_class_lines

RESEARCH_NOTICE = "Research use only; not for diagnosis."


def add_finetune_parser(sub: Any) -> None:
    p = sub.add_parser("finetune", help="fine-tune a classifier on labelled images (ImageFolder or label CSV) and "
                                        "write a classifier bundle")
    p.add_argument("--images", required=True, help="an ImageFolder (one sub-folder per class) or a label CSV "
                                                   "(NIH Data_Entry_2017 or CheXpert train.csv style)")
    p.add_argument("--image-root", help="folder the CSV's image paths start from (default: the CSV's folder)")
    p.add_argument("--labels", help='classes to learn, comma-separated, e.g. "No Finding,Pneumonia" (default: all)')
    p.add_argument("--mode", choices=["probe", "partial", "full"], default="probe",
                   help="probe (default): linear head on the frozen image tower, no torch needed")
    p.add_argument("--base", help="base model name or bundle folder (default: medflip-default)")
    p.add_argument("--budget-minutes", type=float, help="probe: stop (resumably) when the time is up; partial/full: "
                                                         "train this long, then write the bundle")
    p.add_argument("--out", required=True, help="the classifier bundle folder to write")
    p.add_argument("--name", help="model name in the manifest (default: the folder name)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of PATIENTS held out for validation")
    p.add_argument("--seed", type=int, default=0, help="random seed of the patient split and training")
    p.add_argument("--val-patients", help="a text file of patient ids, one a line: exactly these patients are the "
                                          "validation side (e.g. the patients the base model held out)")
    p.add_argument("--patient-pattern", help="regex whose group 1 is the patient id in an image file name "
                                             "(default: a label CSV's patient column, else the built-in patterns: "
                                             "Kermany personN, NIH 8 digits, patientN, IM-xxxx, else the file name)")
    p.add_argument("--cache-dir", help="embedding cache folder (default: in the user data folder)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (of patients) for the CIs")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--json", action="store_true", help="events as JSON lines on stdout (start, step, eval, done, "
                                                       "error)")
    tower = p.add_argument_group("partial / full (the trainer, with torch)")
    tower.add_argument("--epochs", type=float, default=10.0,
                       help="passes over the training images when no --budget-minutes is given")
    tower.add_argument("--batch-size", type=int, default=32, help="images per training step")
    tower.add_argument("--eval-every", type=int, default=25, help="validation AUC every N steps (early stopping)")
    tower.add_argument("--tune-blocks", type=int, default=2, help="partial: how many top transformer blocks train")
    tower.add_argument("--run-dir", help="the trainer's run folder (checkpoints; default: in the user data folder); "
                                         "running the same command again resumes it")
    tower.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                       help="auto = a CUDA GPU when there is one, else the CPU")
    p.set_defaults(func=run_finetune_command)


class TextEvents:
    """Progress for a person on stderr, in place of the JSON-lines EventWriter (same emit/close)."""

    def __init__(self) -> None:
        self._last_tenth = -1

    def close(self) -> None:
        pass

    def emit(self, event: str | Event, **fields: Any) -> None:
        if not isinstance(event, str):
            event, fields = event.name, {**event_fields(event), **fields}
        if event == "start":
            print(f"fine-tuning ({fields['mode']}) {', '.join(fields['classes'])} on {fields['images']} images from "
                  f"{fields['base_model']}", file=sys.stderr)
        elif event == "step" and fields.get("total_steps"):
            tenth = int(10 * fields["step"] / fields["total_steps"])
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                rate = fields.get("samples_per_s")
                print(f"  embedded {fields['step']}/{fields['total_steps']} new images"
                      + (f" ({rate:.1f}/s)" if rate else f", {fields.get('cached', 0)} from the cache"),
                      file=sys.stderr)
        elif event == "done" and fields["status"] != "completed":
            print(f"stopped ({fields.get('reason')}): {fields.get('message')}", file=sys.stderr)


def _format_done(result: Any) -> str:
    v = result.validation
    lines = [f"classifier bundle written to {result.bundle} in {result.seconds:.1f} s "
             f"({result.embedded} images embedded, the rest from the cache; {len(result.skipped)} skipped)",
             f"validation: {v['images']} images of {v['patients']} patients ({v['data_set']}); {v['ci']}"]
    if v.get("small_validation"):
        lines.append(f"WARNING: {v['small_validation']['message']}")
    lines += [f"  {line}" for line in per_class_lines(v["per_class"])]
    if v.get("exposure_check"):
        check = v["exposure_check"]
        lines.append(f"{'WARNING' if check['flagged'] else 'exposure check'}: {check['message']}")
    lines.append(f"  calibration error {v['ece']:.3f} ({v['ece_kind']}; {v['ece_uncalibrated']:.3f} for the head's "
                 f"raw probabilities). {RESEARCH_NOTICE}")
    return "\n".join(lines)


def run_finetune_command(args: argparse.Namespace) -> int:
    from medflip_core.finetune.probe import CancelFlag, ProbeConfig, run_probe

    if args.mode != "probe":
        return run_tower_finetune(args)
    from medflip_core.finetune.dataset import read_patient_list

    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else None
    val_patients = sorted(read_patient_list(args.val_patients)) if args.val_patients else None
    cfg = ProbeConfig(images=args.images, out=args.out, image_root=args.image_root, labels=labels, base=args.base,
                      val_fraction=args.val_fraction, seed=args.seed, budget_minutes=args.budget_minutes,
                      val_patients=val_patients,
                      patient_pattern=args.patient_pattern, cache_dir=args.cache_dir, n_boot=args.n_boot,
                      name=args.name, overwrite=args.overwrite,
                      command=shlex.join(["medflip", "finetune", *sys.argv[sys.argv.index("finetune") + 1:]])
                      if "finetune" in sys.argv else "medflip finetune")
    events = EventWriter("-") if args.json else TextEvents()
    cancel = CancelFlag()
    cancel.install()
    try:
        result = run_probe(cfg, events, cancel)
    except MedflipError as exc:
        events.emit("error", message=str(exc), kind=type(exc).__name__)
        raise
    except Exception as exc:  # a GUI reading the events must see every failure as an event
        events.emit("error", message=f"{type(exc).__name__}: {exc}", kind="internal",
                    traceback=traceback.format_exc(limit=8))
        raise
    if not args.json and result.status == "completed":
        print(_format_done(result))
    return 0


def tower_trainer_args(args: argparse.Namespace) -> list[str]:
    """`medflip finetune --mode partial|full ...` as the trainer's arguments (python -m trainer finetune ...)."""
    from pathlib import Path

    from medflip_core.bundles.checkpoint_layout import latest_checkpoint
    from medflip_core.bundles.model_store import resolve_finetune_base
    from medflip_core.resources import user_data_dir

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise MedflipError(f"{out} exists; choose another name for the model (or pass --overwrite).")
    run_dir = Path(args.run_dir) if args.run_dir else user_data_dir() / "runs" / f"finetune-{out.name}"
    trainer = ["finetune", "--images", args.images, "--finetune-mode", args.mode, "--init-from",
               str(resolve_finetune_base(args.base)), "--bundle-out", str(out), "--out-dir", str(run_dir),
               "--val-fraction", str(args.val_fraction), "--seed", str(args.seed), "--augment",
               "--batch-size", str(args.batch_size), "--eval-every", str(args.eval_every),
               "--checkpoint-every", str(args.eval_every), "--tune-blocks", str(args.tune_blocks),
               "--n-boot", str(args.n_boot), "--device", args.device, "--warmup-steps", "10"]
    trainer += ["--budget-minutes", str(args.budget_minutes)] if args.budget_minutes else ["--epochs", str(args.epochs)]
    for flag, value in (("--labels", args.labels), ("--image-root", args.image_root),
                        ("--patient-pattern", args.patient_pattern), ("--val-patients", args.val_patients)):
        if value:
            trainer += [flag, value]
    if latest_checkpoint(run_dir) is not None:
        trainer.append("--resume")
    return trainer


def run_tower_finetune(args: argparse.Namespace) -> int:
    """The tower modes run in the trainer process; its JSON-lines events are passed on (--json) or summarised."""
    import subprocess

    from medflip_core.processes import TrainerMissing, trainer_command, trainer_missing

    missing = trainer_missing()
    if missing:  # before anything else: a researcher with the light app learns what to install
        raise TrainerMissing(f"--mode {args.mode}: {missing}")
    program, arguments = trainer_command(tower_trainer_args(args))
    with subprocess.Popen([program, *arguments], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        last: dict[str, Any] = {}
        try:
            for line in proc.stdout:
                if args.json:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                if line.startswith("{"):
                    last = _print_tower_event(json.loads(line), quiet=args.json) or last
        except KeyboardInterrupt:  # the trainer got the same Ctrl-C: it checkpoints and says so
            pass
        code = proc.wait()
    if code == 0 and not args.json and last.get("bundle"):
        print(f"classifier bundle written to {last['bundle']} (best validation ROC AUC {last.get('best_val_auc'):.3f}; "
              f"figures: medflip info {last['bundle']} or its MODEL_CARD.md). {RESEARCH_NOTICE}")
        small = _validation_figures(last["bundle"]).get("small_validation")
        if small:
            print(f"WARNING: {small['message']}")
    return code


def _validation_figures(bundle: str) -> dict[str, Any]:
    """The validation figures a bundle carries ({} when it has none or they cannot be read)."""
    from pathlib import Path

    from medflip_core.finetune.classifier_bundle import VALIDATION_JSON

    try:
        return json.loads((Path(bundle) / VALIDATION_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _print_tower_event(event: dict[str, Any], quiet: bool) -> dict[str, Any] | None:
    kind = event.get("event")
    if quiet:
        return event if kind == "done" else None
    if kind == "start":
        resumed = f", resumed at step {event['start_step']}" if event.get("start_step") else ""
        print(f"fine-tuning ({event.get('mode')}) {', '.join(event['classes'])}: {event['n_train']} training and "
              f"{event['n_val']} validation images, from {event.get('base_model')} on {event['device']}{resumed}",
              file=sys.stderr)
    elif kind == "eval":
        per = ", ".join(f"{c} {v:.3f}" for c, v in event.get("val_auc_per_class", {}).items())
        print(f"  step {event['step']}: validation ROC AUC {event.get('val_auc', float('nan')):.3f} ({per}); "
              f"best {event.get('best_val_auc') or float('nan'):.3f}", file=sys.stderr)
    elif kind == "done":
        if event.get("status") != "completed":
            print(f"stopped ({event.get('reason')}): {event.get('message')}", file=sys.stderr)
        return event
    return None  # an error: the trainer itself says it on stderr


def classifier_rows(engine: Any, paths: list[str]) -> list[dict[str, Any]]:
    """One row per image: the classifier's calibrated probabilities (`scores`, as the zero-shot rows have),
    decisions at the stored thresholds, and out-of-distribution warnings; unreadable files give an error row.
    The loop is medflip_core.inference.batch.classify_files, the one the app's Batch tab runs."""
    from medflip_core.inference.batch import classify_files

    return classify_files(engine, paths, [], classifier=True)


def print_classifier_results(engine: Any, paths: list[str], as_json: bool) -> int:
    clf = engine.classifier
    rows = classifier_rows(engine, paths)
    if as_json:
        json.dump({"model": engine.bundle.name, "kind": "classifier", "classes": clf.classes,
                   "multi_label": clf.multi_label, "calibration": clf.calibration.get("method"),
                   "calibrated": clf.calibrated, "probabilities": clf.probability_words(),
                   "decision_rule": clf.rule_sentence(),
                   "notice": RESEARCH_NOTICE, "results": rows}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        kind = "independent per label" if clf.multi_label else "summing to 1"
        print(f"# classifier {engine.bundle.name}: {clf.probability_words()}, {kind}. {clf.rule_sentence()} "
              f"{RESEARCH_NOTICE}")
        for r in rows:
            if "error" in r:
                print(f"{r['path']}: ERROR {r['error']}")
                continue
            if clf.multi_label:
                parts = [f"{c} {p:.3f} ({'YES' if r['decisions'][c] else 'no'} at {r['thresholds'][c]:.3f})"
                         for c, p in r["scores"].items()]
                print(f"{r['path']}: " + ", ".join(parts))
            else:
                scores = ", ".join(f"{c} {p:.3f}" for c, p in r["scores"].items())
                print(f"{r['path']}: {r['top']} ({scores})")
            for w in r["warnings"]:
                print(f"    warning: {w}")
            for note in r.get("notes", []):
                print(f"    note: {note}")
    return 1 if any("error" in r for r in rows) else 0


def evaluate_classifier_command(engine: Any, args: argparse.Namespace) -> int:
    from medflip_core.finetune.evaluate import evaluate_classifier, format_classifier_evaluation

    result = evaluate_classifier(engine, args.data_dir, image_root=getattr(args, "image_root", None),
                                 positive=args.positive, n_boot=args.n_boot)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_classifier_evaluation(result))
    return 0
