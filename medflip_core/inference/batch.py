"""The one classify-files loop: image files in, one row of scores (or a readable error) per file out.

Scores are zero-shot over labels, or a classifier bundle's calibrated probabilities of its own classes with the
decisions at its stored thresholds. Shared by `medflip classify` and the app's Batch tab, so both give the same
scores, the same out-of-distribution warnings and the same CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from medflip_core.errors import MedflipError

# path, and either scores/top/label_mode/warnings/notes (+ decisions/thresholds for a classifier) or error;
# warnings are the out-of-distribution reasons (the tags: medflip_core.inference.ood; the pixels and the embedding:
# medflip_core.inference.image_ood), notes how the file was decoded, label_mode
# what the scores mean (medflip_core.inference.zeroshot.ZeroShotScores.mode_text, or the classifier's kind)
Row = dict[str, Any]
SCORE_FORMAT = "{:.4f}"  # one number format for every probability in tables and CSV files


@dataclass(frozen=True)
class BatchRun:
    """What made a batch's numbers, written into every CSV row so that a file read months later, or several
    concatenated, still says which model, label mode and prompts they came from."""

    model: str  # the bundle's name
    prompts: str  # where the texts standing for each label came from
    templates: tuple[str, ...] = ()  # the templates around each label ({label} placeholder); none for a classifier
    uncalibrated: tuple[str, ...] = ()  # zero-shot labels outside the label space (zeroshot.outside_label_space)
    version: str = ""  # when the bundle was made and its image encoder's hash: one name can hold several models
    unvalidated: tuple[str, ...] = ()  # labels of the label space no validation figure backs (validated_labels)
    alike: tuple[str, ...] = ()  # labels whose score says how abnormal the film looks (label_specificity)


def describe_run(engine: Any, labels: list[str], templates: list[str] | None = None,
                 classifier: bool = False) -> BatchRun:
    """The BatchRun of classify_files(engine, _, labels, templates, classifier=classifier)."""
    from medflip_core.inference.label_specificity import alike_notes
    from medflip_core.inference.validated_labels import validation_notes
    from medflip_core.inference.zeroshot import outside_label_space, user_templates
    from medflip_core.labeler.prompts import load_prompt_set

    name, version = engine.bundle.name, model_version(engine.bundle.manifest)
    if classifier:
        clf = engine.classifier
        words = clf.probability_words() if clf is not None else "calibrated probabilities"
        rule = f"; {clf.rule_sentence()}" if clf is not None else ""
        return BatchRun(name, f"none: the classifier's own classes ({words}){rule}", version=version)
    outside = tuple(outside_label_space(labels))  # their columns are not probabilities: the CSV says which
    base = BatchRun(name, "", version=version, unvalidated=tuple(validation_notes(engine.bundle.manifest, labels)))
    if user_templates(templates, engine.bundle.manifest) is not None:
        return replace(base, prompts="templates typed by the user (the plain decision rule)",
                       templates=tuple(templates), uncalibrated=outside)
    shipped = engine.shipped_prompts
    try:
        own = shipped is not None and shipped.plan(labels) is not None
    except MedflipError:  # labels the scoring itself will refuse with a sentence (none, duplicates)
        own = False
    base = replace(base, alike=tuple(alike_notes(engine, labels)))  # measured with the bundle's prompts, not typed
    if own:
        return replace(base, prompts=f"the model's own prompt set “{shipped.name}” ({shipped.mode})",
                       templates=shipped.prompt_set.templates, uncalibrated=outside)
    return replace(base, prompts="the default prompt set (templates and each finding's phrasings)",
                   templates=load_prompt_set().templates, uncalibrated=outside)


def model_version(manifest: dict) -> str:
    """"created <time>, image encoder sha256 <12 hex>": ties a CSV row to the weights that made it (a GUI walk: two
    different models named medflip-default, a CSV could not say which)."""
    files = manifest.get("files") or {}
    entry = files.get("image_encoder.onnx") or files.get("weights.safetensors") or {}
    sha = str(entry.get("sha256") or "")[:12]
    return f"created {manifest.get('created', '?')}" + (f", image encoder sha256 {sha}" if sha else "")


def expand_paths(paths: Sequence[str | Path]) -> tuple[list[Path], list[Row]]:
    """Image files under the given files/folders; a path that yields none becomes an error row."""
    from medflip_core.imaging import iter_image_files

    files: list[Path] = []
    errors: list[Row] = []
    for path in paths:
        try:
            files.extend(iter_image_files(path))
        except MedflipError as exc:
            errors.append({"path": str(path), "error": str(exc)})
    return files, errors


def classify_files(
    engine: Any,
    paths: Sequence[str | Path],
    labels: list[str],
    templates: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    classifier: bool = False,
    mode: str | None = None,
    reader: Any = None,
) -> list[Row]:
    """Scores of every image under `paths` (files, folders, DICOMDIRs): zero-shot over `labels`, or with
    `classifier` the engine's classifier (its classes, calibrated, and `decisions` at its thresholds).

    Zero-shot scores are the Zero-shot tab's (medflip_core.inference.zeroshot.score_with_templates) in label `mode`
    ("exclusive", "independent", or None / "automatic": chosen from the labels). Unreadable files give a row
    with `error`; an image out of the model's distribution (its `warnings`) has no top label, its scores are kept;
    `should_stop()` ends the loop early (rows so far are kept). With `reader` (a
    medflip_core.imaging.reader_processes.ReaderProcesses) the files are decoded in its worker processes, a few
    ahead of the scoring: the caller's process (a window) never waits on a decoder holding its GIL.
    """
    from medflip_core.imaging import load_image
    from medflip_core.inference.image_ood import all_warnings

    if not classifier:
        from medflip_core.inference.zeroshot import choose_label_mode

        choose_label_mode(labels, mode)  # a mode these labels cannot have is one sentence, not an error per file
    files, rows = expand_paths(paths)
    if progress is not None:
        progress(0, len(files))
    stop = should_stop or (lambda: False)
    loaded = (reader.load_images(files) if reader is not None
              else ((p, _read(load_image, p)) for p in files if not stop()))  # asked before each decode
    try:
        for i, (path, rg) in enumerate(loaded):
            if stop():
                break
            try:
                if isinstance(rg, MedflipError):
                    raise rg
                row, embedding, layout = (_classifier_row(engine, rg) if classifier
                                          else _zero_shot_row(engine, rg, labels, templates, mode))
                warnings = all_warnings(rg, rg.pixels, embedding, engine.ood_reference, layout)
            except MedflipError as exc:
                rows.append({"path": str(path), "error": str(exc)})
            else:
                if warnings:  # no top label where the scores do not apply: a GUI walk found a leg film listed (and
                    row["top"] = ""  # counted by a CSV filter) as "No Finding"; its scores stay in their columns
                rows.append({"path": str(path), **row, "warnings": warnings, "notes": list(rg.notes)})
            if progress is not None:
                progress(i + 1, len(files))
    finally:
        if hasattr(loaded, "close"):
            loaded.close()
    return rows


def _read(load_image: Callable[[Path], Any], path: Path) -> Any:
    """The image, or its load error as a value (so that one loop serves both ways of reading)."""
    try:
        return load_image(path)
    except MedflipError as exc:
        return exc


def _zero_shot_row(engine: Any, rg: Any, labels: list[str], templates: list[str] | None,
                   mode: str | None) -> tuple[Row, Any, Any]:
    """The row's scores, and the image embedding they came from and its layout (for the out-of-distribution
    check)."""
    from medflip_core.inference.image_ood import layout_features
    from medflip_core.inference.zeroshot import outside_label_space, score_with_templates

    out = engine.embed_images([rg])
    embedding = out.embedding[0]
    result = score_with_templates(engine, embedding, labels, templates, mode)
    scores = {label: float(p) for label, p in zip(result.labels, result.probs[0], strict=True)}
    # the top label is one of the model's own labels when any was asked: a label outside them is no probability
    # (a GUI walk: "COVID-19" topped 4 of 5 normal children's films, every score below 0.25)
    outside = set(outside_label_space(result.labels))
    own = {label: p for label, p in scores.items() if label not in outside} or scores
    row = {"scores": scores, "top": max(own, key=own.get), "label_mode": result.mode_text(),
           "cautions": result.contradictions()}  # cautions: as the Zero-shot tab warns
    return row, embedding, layout_features(out.patch_tokens, out.grid)


def _classifier_row(engine: Any, rg: Any) -> tuple[Row, Any, Any]:
    from medflip_core.inference.image_ood import layout_features

    pred = engine.predict([rg])[0]
    mode = "each class present vs absent" if pred.multi_label else "one class per image"
    return {"scores": pred.probabilities, "top": pred.top, "decisions": pred.decisions,
            "thresholds": pred.thresholds, "label_mode": f"classifier: {mode}",
            "probabilities": engine.classifier.probability_words()}, pred.embedding, layout_features(
                pred.patch_tokens, engine.grid)


def format_score(p: float) -> str:
    return SCORE_FORMAT.format(p)


def has_decisions(rows: Sequence[Row]) -> bool:
    """Rows from a classifier: they carry decisions at the stored thresholds."""
    return any("decisions" in row for row in rows)


RUN_COLUMNS = ["model", "model_version", "label_mode", "prompts", "templates", "uncalibrated_labels",
               "unvalidated_labels", "abnormality_like_labels"]


def csv_header(labels: list[str], decisions: bool = False) -> list[str]:
    """One probability column per label; a classifier adds one 0/1 decision column per class; the run's
    model, label mode, prompts and the labels whose columns are not calibrated probabilities (outside the model's
    label space) close every row (one file says how its numbers were made)."""
    extra = [f"decision: {label}" for label in labels] if decisions else []
    return ["file", "path", "top_label", *labels, *extra, "out_of_distribution", "notes", "error", *RUN_COLUMNS]


def csv_row(row: Row, labels: list[str], decisions: bool = False, run: BatchRun | None = None) -> list[str]:
    scores = row.get("scores", {})
    decided = row.get("decisions", {})
    extra = [str(int(decided[label])) if label in decided else "" for label in labels] if decisions else []
    provenance = ([run.model, run.version, row.get("label_mode", ""), run.prompts, " | ".join(run.templates),
                   " | ".join(run.uncalibrated), " | ".join(run.unvalidated), " | ".join(run.alike)] if run
                  else ["", "", row.get("label_mode", ""), "", "", "", "", ""])
    return [Path(row["path"]).name, row["path"], row.get("top", ""),
            *[format_score(scores[label]) if label in scores else "" for label in labels], *extra,
            "; ".join(row.get("warnings", [])), "; ".join(row.get("notes", [])), row.get("error", ""), *provenance]


def write_csv(rows: list[Row], labels: list[str], path: str | Path, run: BatchRun | None = None) -> Path:
    """Write the rows as CSV, in the order given (a table passes its on-screen order), `.csv` added when the
    name has no suffix, atomically and with the user's usual file permissions; returns the path written."""
    from medflip_core.atomic import USER_FILE, write_text_atomic

    path = Path(path)
    if path.suffix.lower() != ".csv":
        path = path.with_name(path.name + ".csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    decisions = has_decisions(rows)
    writer.writerow(csv_header(labels, decisions))
    for row in rows:
        writer.writerow(csv_row(row, labels, decisions, run))
    write_text_atomic(path, buffer.getvalue(), mode=USER_FILE)
    return path
