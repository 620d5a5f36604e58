"""The label journal: every answer is on disk before the next film is shown.

Two files in one folder (the user data folder or beside the images; `label_place` says which):
- `labels.journal.jsonl`, append-only, one JSON object a line, each line written with one `write` and fsynced:
  the first line says what is labelled (folder, classes, one class per film or findings); then `label`,
  `skip` and `undo` records. A kill -9 or a power cut can leave at most a last line without its newline (the
  answer being written): it is ignored on reopening. Any other damage (a line that is not one of our records,
  in the middle or complete at the end) is refused with the line number; the file is never rewritten.
- `labels.csv`, the NIH `Data_Entry_2017.csv`-style snapshot the rest of the app reads (`Image Index` relative to
  the labelled folder, `Finding Labels` joined by `|` or `No Finding`, `Patient ID`, then `Chosen By` and
  `Labelled At`), rewritten atomically (temporary file, fsync, rename) after every answer from the journal.
  Before rewriting it the journal checks that the CSV on disk is one it wrote itself (the snapshot after its
  last record, or the one before: a kill between the journal's append and the CSV's rename): a CSV changed by
  hand or damaged is refused with a sentence and left as it is, and so is a `labels.csv` the journal did not
  write.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medflip_core.atomic import USER_FILE, fsync_dir, write_text_atomic
from medflip_core.data.patient_sides import LABELLING_CSV_COLUMNS
from medflip_core.errors import MedflipError

JOURNAL_NAME = "labels.journal.jsonl"
CSV_NAME = "labels.csv"
FORMAT = "medflip-label-journal"
VERSION = 1
NO_FINDING = "No Finding"
CSV_COLUMNS = LABELLING_CSV_COLUMNS
OPS = ("label", "skip", "undo")


@dataclass(frozen=True)
class Answer:
    """One confirmed answer: the film (relative to the labelled folder), the classes present, its patient."""

    image: str
    labels: tuple[str, ...]
    patient: str
    chosen_by: str
    at: str
    seq: int


@dataclass
class LabelState:
    """What the journal says now: the latest answer per film, the films skipped, and the order of events."""

    classes: list[str]
    multi_label: bool
    answers: dict[str, Answer] = field(default_factory=dict)  # image -> its latest answer, in answer order
    skipped: set[str] = field(default_factory=set)
    history: list[dict[str, Any]] = field(default_factory=list)  # label/skip records not undone, oldest first

    def counts(self) -> dict[str, int]:
        """Films per class (findings: films with it; a film without any finding counts under No Finding)."""
        out = {c: 0 for c in self.classes}
        for a in self.answers.values():
            for lb in a.labels or ((NO_FINDING,) if self.multi_label else ()):
                out[lb] = out.get(lb, 0) + 1
        return out

    def apply(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "undo":
            if not self.history:
                return
            self.history.pop()
            self._rebuild()
            return
        self.history.append(record)
        self._apply_one(record)

    def _apply_one(self, record: dict[str, Any]) -> None:
        image = record["image"]
        if record["op"] == "label":
            self.answers.pop(image, None)  # a new answer for a film moves it to the end (the latest)
            self.answers[image] = Answer(image, tuple(record["labels"]), str(record.get("patient", "")),
                                         str(record.get("chosen_by", "")), str(record.get("at", "")),
                                         int(record.get("seq", 0)))
            self.skipped.discard(image)
        else:
            if image not in self.answers:
                self.skipped.add(image)

    def _rebuild(self) -> None:
        self.answers, self.skipped = {}, set()
        for record in self.history:
            self._apply_one(record)


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def render_csv(state: LabelState) -> str:
    """The label CSV of a state, NIH style (what `medflip_core.data.label_csv.read_label_csv` reads)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in state.answers.values():
        findings = "|".join(a.labels) if a.labels else NO_FINDING
        writer.writerow([a.image, findings, a.patient, a.chosen_by, a.at])
    return buf.getvalue()


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


class LabelJournal:
    """Open (or start) the journal of one labelling job in `place`; `folder`, `classes` and `multi_label` must
    match what the journal was started with."""

    def __init__(self, place: str | Path, folder: str | Path, classes: Iterable[str], multi_label: bool) -> None:
        self.place = Path(place)
        self.folder = str(Path(folder).resolve())
        self.classes = [c.strip() for c in classes if c.strip()]
        self.multi_label = bool(multi_label)
        if len(self.classes) < (1 if multi_label else 2):
            raise MedflipError("Name at least two classes (one class per film), or at least one finding.")
        if len(set(self.classes)) != len(self.classes):
            raise MedflipError(f"A class is named twice: {', '.join(self.classes)}.")
        if any("|" in c or "," in c for c in self.classes):
            raise MedflipError("Class names cannot contain '|' or ',' (the label CSV separates classes with them).")
        self.journal_path = self.place / JOURNAL_NAME
        self.csv_path = self.place / CSV_NAME
        self.state = LabelState(list(self.classes), self.multi_label)
        self._records: list[dict[str, Any]] = []
        self._seq = 0
        self.recovered_partial_line = False
        if self.journal_path.exists():
            self._read()
        else:
            self._start()
        self._check_csv()

    # --- reading --------------------------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            data = self.journal_path.read_bytes()
        except OSError as exc:
            raise MedflipError(f"Cannot read the label journal {self.journal_path}: {exc.strerror}.") from exc
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline; else a last line cut short by a kill
        if tail:  # never confirmed (the kill came mid-write): cut it off, or the next record would join it
            self.recovered_partial_line = True
            self._truncate(len(data) - len(tail))
        if not lines:
            raise MedflipError(f"The label journal {self.journal_path} holds no header line: it is damaged. It is "
                               "left as it is; move it aside to start labelling this folder afresh.")
        for number, raw in enumerate(lines, start=1):
            record = self._parse(raw, number)
            if number == 1:
                self._check_header(record)
                continue
            self._records.append(record)
            self._seq = max(self._seq, int(record.get("seq", 0)))
            self.state.apply(record)

    def _truncate(self, size: int) -> None:
        try:
            with open(self.journal_path, "rb+") as fh:
                fh.truncate(size)
                os.fsync(fh.fileno())
        except OSError as exc:
            raise MedflipError(f"Cannot repair the last line of {self.journal_path}: {exc.strerror}.") from exc

    def _parse(self, raw: bytes, number: int) -> dict[str, Any]:
        where = f"line {number} of the label journal {self.journal_path}"
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise MedflipError(f"{where} is damaged (not one of the records MedFLIP Studio writes). Nothing was "
                               "changed; the answers before it are intact. Move the journal aside (or repair that "
                               "line) to continue.") from None
        if not isinstance(record, dict):
            raise MedflipError(f"{where} is not a record MedFLIP Studio writes. Nothing was changed.")
        if number == 1:
            return record
        op = record.get("op")
        if op not in OPS or (op != "undo" and not isinstance(record.get("image"), str)):
            raise MedflipError(f"{where} is not a label, skip or undo record (op={op!r}). Nothing was changed.")
        if op == "label":
            labels = record.get("labels")
            if not isinstance(labels, list) or any(lb not in self.classes for lb in labels):
                raise MedflipError(f"{where} names classes {labels!r} outside this job's classes "
                                   f"({', '.join(self.classes)}). Nothing was changed.")
        return record

    def _check_header(self, header: dict[str, Any]) -> None:
        if header.get("format") != FORMAT:
            raise MedflipError(f"{self.journal_path} is not a MedFLIP Studio label journal. It is left as it is.")
        if int(header.get("version", 0)) > VERSION:
            raise MedflipError(f"{self.journal_path} was written by a newer MedFLIP Studio (journal version "
                               f"{header.get('version')}); update the app to continue it.")
        if header.get("classes") != self.classes or bool(header.get("multi_label")) != self.multi_label:
            kind = "findings" if header.get("multi_label") else "one class per film"
            raise MedflipError(f"The labels in {self.place} were started with the classes "
                               f"{', '.join(header.get('classes') or [])} ({kind}). Continue with those classes, "
                               "or choose another place for the new labels.")
        self.header = header

    def _check_csv(self) -> None:
        """The CSV on disk must be one this journal wrote (or absent); else refuse, never overwrite it."""
        if not self.csv_path.exists():
            if self._records:  # killed before the first snapshot, or the CSV was moved aside: write it again
                self._write_csv()
            return
        try:
            on_disk = self.csv_path.read_bytes()
        except OSError as exc:
            raise MedflipError(f"Cannot read {self.csv_path}: {exc.strerror}.") from exc
        current = _sha(render_csv(self.state))
        expected = {current}
        if self._records:  # killed after the journal's append, before the CSV's rename: the previous snapshot
            before = LabelState(list(self.classes), self.multi_label)
            for record in self._records[:-1]:
                before.apply(record)
            expected.add(_sha(render_csv(before)))
        if _sha(on_disk) not in expected:
            raise MedflipError(
                f"{self.csv_path} was changed outside MedFLIP Studio (edited by hand, or damaged) since labelling "
                f"last wrote it: it no longer matches the {len(self.state.answers)} answers in "
                f"{self.journal_path.name}. It has NOT been overwritten. Rename or move it to keep it (the labels "
                "are then rewritten from the journal), or choose another place for the labels.")
        if _sha(on_disk) != current:
            self._write_csv()

    # --- writing --------------------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.csv_path.exists():
            raise MedflipError(f"{self.csv_path} already exists and was not written by labelling here (there is no "
                               f"{JOURNAL_NAME} beside it). It has NOT been overwritten: choose another place for "
                               "the labels, or move that file.")
        self.place.mkdir(parents=True, exist_ok=True)
        self.header = {"format": FORMAT, "version": VERSION, "folder": self.folder, "classes": self.classes,
                       "multi_label": self.multi_label, "started": _now(),
                       "csv": CSV_NAME, "research_use_only": True}
        try:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, USER_FILE)
        except FileExistsError:
            raise MedflipError(f"{self.journal_path} appeared while starting: another labelling window may use this "
                               "place. Close it, or choose another place.") from None
        except OSError as exc:
            raise MedflipError(f"Cannot write labels in {self.place}: {exc.strerror}. Choose another place.") from exc
        try:
            os.write(fd, _line(self.header))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.place)

    def _append(self, record: dict[str, Any]) -> None:
        """One line, one write, fsynced: on disk before this returns."""
        try:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, _line(record))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise MedflipError(f"Could not save the answer in {self.journal_path}: {exc.strerror}. The answer was "
                               "not recorded; free some space or choose another place.") from exc
        self._records.append(record)
        self.state.apply(record)
        self._write_csv()

    def _write_csv(self) -> None:
        try:
            write_text_atomic(self.csv_path, render_csv(self.state), mode=USER_FILE)
        except OSError as exc:  # the journal has the answer; the CSV is rewritten from it at the next answer
            raise MedflipError(f"The answer is saved in the journal, but {self.csv_path} could not be rewritten: "
                               f"{exc.strerror}.") from exc

    def label(self, image: str, labels: Iterable[str], patient: str, chosen_by: str = "") -> Answer:
        labels = tuple(labels)
        unknown = [lb for lb in labels if lb not in self.classes]
        if unknown:
            raise MedflipError(f"{', '.join(unknown)} is not a class of this labelling job "
                               f"({', '.join(self.classes)}).")
        if not self.multi_label and len(labels) != 1:
            raise MedflipError("One class per film: choose exactly one.")
        self._seq += 1
        self._append({"op": "label", "seq": self._seq, "image": image, "labels": list(labels), "patient": patient,
                      "chosen_by": chosen_by, "at": _now()})
        return self.state.answers[image]

    def skip(self, image: str, chosen_by: str = "") -> None:
        self._seq += 1
        self._append({"op": "skip", "seq": self._seq, "image": image, "chosen_by": chosen_by, "at": _now()})

    def undo(self) -> dict[str, Any] | None:
        """Take back the latest answer or skip still standing; returns its record (None when there is none)."""
        if not self.state.history:
            return None
        last = self.state.history[-1]
        self._seq += 1
        self._append({"op": "undo", "seq": self._seq, "undoes": last.get("seq"), "at": _now()})
        return last

    def rewrite_csv(self) -> None:
        """Rewrite the CSV from the journal (after a refused CSV was moved aside)."""
        self._write_csv()

    @property
    def answers(self) -> dict[str, Answer]:
        return self.state.answers


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
