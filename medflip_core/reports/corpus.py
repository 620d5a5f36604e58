"""Report corpora from disk. The Open-i archive is read in place (its licence allows no derivatives)."""

from __future__ import annotations

import csv
import io
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from medflip_core.errors import ReportParseError
from medflip_core.reports.sentence_split import clean_deid, split_sentences

_TEXT_COLUMNS = ("report", "text", "findings", "impression", "sentence")
_ID_COLUMNS = ("id", "report_id", "study_id", "uid")


@dataclass(frozen=True)
class Report:
    report_id: str
    findings: str = ""
    impression: str = ""
    indication: str = ""
    comparison: str = ""
    mesh_major: tuple[str, ...] = ()
    mesh_automatic: tuple[str, ...] = ()
    image_ids: tuple[str, ...] = ()
    source: str = ""

    @property
    def text(self) -> str:
        """Findings and impression, the parts that describe the image."""
        return " ".join(part for part in (self.findings, self.impression) if part)


def parse_openi_xml(data: bytes, source: str) -> Report:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportParseError(f"{source}: not well-formed XML ({exc}).") from exc
    sections = {}
    for node in root.iter("AbstractText"):
        sections[(node.get("Label") or "").upper()] = " ".join((node.text or "").split())
    uid = root.find("uId")
    report_id = uid.get("id") if uid is not None and uid.get("id") else Path(source).stem
    mesh = root.find("MeSH")
    major = tuple(m.text.strip() for m in mesh.iter("major") if m.text) if mesh is not None else ()
    auto = tuple(m.text.strip() for m in mesh.iter("automatic") if m.text) if mesh is not None else ()
    images = tuple(p.get("id", "") for p in root.iter("parentImage") if p.get("id"))
    return Report(report_id=report_id, findings=sections.get("FINDINGS", ""),
                  impression=sections.get("IMPRESSION", ""), indication=sections.get("INDICATION", ""),
                  comparison=sections.get("COMPARISON", ""), mesh_major=major, mesh_automatic=auto,
                  image_ids=images, source=source)


def _xml_from_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.lower().endswith(".xml"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        yield f"{path.name}:{member.name}", handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ReportParseError(f"{path.name}: unreadable archive ({exc}).") from exc


def _reports_from_csv(path: Path) -> list[Report]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportParseError(f"{path.name}: cannot read the CSV ({exc}).") from exc
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.lower().strip(): c for c in (reader.fieldnames or [])}
    text_cols = [columns[c] for c in _TEXT_COLUMNS if c in columns]
    if not text_cols:
        raise ReportParseError(
            f"{path.name}: no report text column (expected one of {', '.join(_TEXT_COLUMNS)})."
        )
    id_col = next((columns[c] for c in _ID_COLUMNS if c in columns), None)
    reports = []
    for i, row in enumerate(reader):
        body = " ".join((row.get(c) or "").strip() for c in text_cols).strip()
        if body:
            rid = (row.get(id_col) or "").strip() if id_col else ""
            reports.append(Report(report_id=rid or f"{path.stem}:{i + 1}", findings=body, source=str(path)))
    return reports


def _reports_from_txt(path: Path) -> list[Report]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportParseError(f"{path.name}: cannot read the text file ({exc}).") from exc
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n")]
    return [Report(report_id=f"{path.stem}:{i + 1}", findings=" ".join(b.split()), source=str(path))
            for i, b in enumerate(blocks) if b]


def load_reports(path: str | Path) -> list[Report]:
    """Reports from an Open-i .tgz / folder / XML file, a CSV, or a TXT (blank-line separated)."""
    path = Path(path)
    if not path.exists():
        raise ReportParseError(f"{path}: no such file or folder.")
    name = path.name.lower()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.xml") if p.is_file())
        if not files:
            raise ReportParseError(f"{path}: the folder holds no Open-i XML report files.")
        reports = [parse_openi_xml(p.read_bytes(), str(p)) for p in files]
    elif name.endswith((".tgz", ".tar.gz", ".tar")):
        reports = [parse_openi_xml(data, src) for src, data in _xml_from_tar(path)]
    elif name.endswith(".xml"):
        reports = [parse_openi_xml(path.read_bytes(), str(path))]
    elif name.endswith(".csv"):
        reports = _reports_from_csv(path)
    elif name.endswith(".txt"):
        reports = _reports_from_txt(path)
    else:
        raise ReportParseError(f"{path.name}: unsupported report file (use Open-i XML or .tgz, CSV or TXT).")
    if not reports:
        raise ReportParseError(f"{path}: no reports found.")
    return reports


def load_sentence_corpus(path: str | Path) -> list[str]:
    """Unique, cleaned sentences of every report's findings and impression, in corpus order.

    A .txt file is read as one sentence (or short text) per line.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ReportParseError(f"{path.name}: cannot read the text file ({exc}).") from exc
        raw = [line for line in lines if line.strip()]
    else:
        raw = [s for report in load_reports(path) for s in split_sentences(report.text)]
    seen: dict[str, None] = {}
    for sentence in raw:
        cleaned = clean_deid(sentence)
        if len(cleaned.split()) >= 2 and any(c.isalpha() for c in cleaned):
            seen.setdefault(cleaned, None)
    if not seen:
        raise ReportParseError(f"{path}: no usable sentences.")
    return list(seen)
