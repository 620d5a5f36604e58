"""The one classify-files loop: image files in, one row of scores (or a readable error) per file out.

Scores are zero-shot over labels, or a classifier bundle's calibrated probabilities of its own classes with the
decisions at its stored thresholds. Shared by `medflip classify` and the app's Batch tab, so both give the same
scores, the same out-of-distribution warnings and the same CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medflip_core.errors import MedflipError

Row = dict[str, Any]  # path, and either scores/top/warnings (+ decisions/thresholds for a classifier) or error
SCORE_FORMAT = "{:.4f}"  # one number format for every probability in tables and CSV files


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
) -> list[Row]:
    """Scores of every image under `paths` (files, folders, DICOMDIRs): zero-shot over `labels`, or with
    `classifier` the engine's classifier (its classes, calibrated, and `decisions` at its thresholds).

    Unreadable files give a row with `error`; `should_stop()` ends the loop early (rows so far are kept).
    """
    from medflip_core.imaging import load_image
    from medflip_core.ood import out_of_distribution

    files, rows = expand_paths(paths)
    for i, path in enumerate(files):
        if should_stop is not None and should_stop():
            break
        try:
            rg = load_image(path)
            row = _classifier_row(engine, rg) if classifier else _zero_shot_row(engine, rg, labels, templates)
        except MedflipError as exc:
            rows.append({"path": str(path), "error": str(exc)})
        else:
            rows.append({"path": str(path), **row, "warnings": out_of_distribution(rg.metadata) + list(rg.notes)})
        if progress is not None:
            progress(i + 1, len(files))
    return rows


def _zero_shot_row(engine: Any, rg: Any, labels: list[str], templates: list[str] | None) -> Row:
    scores = engine.classify(engine.embed_images([rg]).embedding[0], labels, templates)
    return {"scores": scores, "top": max(scores, key=scores.get)}


def _classifier_row(engine: Any, rg: Any) -> Row:
    pred = engine.predict([rg])[0]
    return {"scores": pred.probabilities, "top": pred.top, "decisions": pred.decisions,
            "thresholds": pred.thresholds}


def format_score(p: float) -> str:
    return SCORE_FORMAT.format(p)


def has_decisions(rows: Sequence[Row]) -> bool:
    """Rows from a classifier: they carry decisions at the stored thresholds."""
    return any("decisions" in row for row in rows)


def csv_header(labels: list[str], decisions: bool = False) -> list[str]:
    """One probability column per label; a classifier adds one 0/1 decision column per class."""
    extra = [f"decision: {label}" for label in labels] if decisions else []
    return ["file", "path", "top_label", *labels, *extra, "out_of_distribution", "error"]


def csv_row(row: Row, labels: list[str], decisions: bool = False) -> list[str]:
    scores = row.get("scores", {})
    decided = row.get("decisions", {})
    extra = [str(int(decided[label])) if label in decided else "" for label in labels] if decisions else []
    return [Path(row["path"]).name, row["path"], row.get("top", ""),
            *[format_score(scores[label]) if label in scores else "" for label in labels], *extra,
            "; ".join(row.get("warnings", [])), row.get("error", "")]


def write_csv(rows: list[Row], labels: list[str], path: str | Path) -> Path:
    """Write the rows as CSV (`.csv` added when the name has no suffix); returns the path written."""
    from medflip_core.atomic import write_text_atomic

    path = Path(path)
    if path.suffix.lower() != ".csv":
        path = path.with_name(path.name + ".csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    decisions = has_decisions(rows)
    writer.writerow(csv_header(labels, decisions))
    for row in rows:
        writer.writerow(csv_row(row, labels, decisions))
    write_text_atomic(path, buffer.getvalue())
    return path
