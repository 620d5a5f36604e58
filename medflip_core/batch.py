"""The one classify-files loop: image files in, one row of zero-shot scores (or a readable error) per file out.

Shared by `medflip classify` and the app's Batch tab, so both give the same scores, the same
out-of-distribution warnings and the same CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medflip_core.errors import MedflipError

Row = dict[str, Any]  # path, and either scores/top/warnings or error
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
) -> list[Row]:
    """Zero-shot scores of every image under `paths` (files, folders, DICOMDIRs).

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
            scores = engine.classify(engine.embed_images([rg]).embedding[0], labels, templates)
        except MedflipError as exc:
            rows.append({"path": str(path), "error": str(exc)})
        else:
            rows.append({"path": str(path), "scores": scores, "top": max(scores, key=scores.get),
                         "warnings": out_of_distribution(rg.metadata) + list(rg.notes)})
        if progress is not None:
            progress(i + 1, len(files))
    return rows


def format_score(p: float) -> str:
    return SCORE_FORMAT.format(p)


def csv_header(labels: list[str]) -> list[str]:
    return ["file", "path", "top_label", *labels, "out_of_distribution", "error"]


def csv_row(row: Row, labels: list[str]) -> list[str]:
    scores = row.get("scores", {})
    return [Path(row["path"]).name, row["path"], row.get("top", ""),
            *[format_score(scores[label]) if label in scores else "" for label in labels],
            "; ".join(row.get("warnings", [])), row.get("error", "")]


def write_csv(rows: list[Row], labels: list[str], path: str | Path) -> Path:
    """Write the rows as CSV (`.csv` added when the name has no suffix); returns the path written."""
    from medflip_core.atomic import write_text_atomic

    path = Path(path)
    if path.suffix.lower() != ".csv":
        path = path.with_name(path.name + ".csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_header(labels))
    for row in rows:
        writer.writerow(csv_row(row, labels))
    write_text_atomic(path, buffer.getvalue())
    return path
