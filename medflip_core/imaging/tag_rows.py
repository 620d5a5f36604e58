"""A DICOM header as the rows of a tag browser: each element in the file's order, a sequence's items nested under
it (`depth`), and which rows identify the patient. A GUI walk read a leg film's sequences flat: CodeValue and
CodeMeaning rows of two sequences one after the other, their sequence nowhere in sight."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

MAX_VALUE_CHARS = 200
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})


class TagRow(NamedTuple):
    """One row: an element ("(0008,0100)", "CodeValue", "121320"), or a sequence's item ("", "Item 2", "") when
    the sequence holds more than one. `depth`: 0 for the dataset's own elements, one more per sequence (and per
    item row) above it. `order`: the row's place in the file, for putting hidden and shown rows back together."""

    tag: str
    keyword: str
    value: str
    depth: int = 0
    order: int = 0

    @property
    def is_item(self) -> bool:
        return not self.tag


def _value(elem: DataElement) -> str:
    vr, value = elem.VR, elem.value
    if vr == "SQ":
        n = len(value or [])
        return f"<{n} item{'s' if n != 1 else ''}>"
    if vr in BINARY_VRS:
        return f"<{vr} binary, {len(value) if value is not None else 0} bytes>"
    text = str(value)
    return text[:MAX_VALUE_CHARS] + "…" if len(text) > MAX_VALUE_CHARS else text


def dataset_rows(ds: Dataset, identifying: Collection[str], skip: Collection[str] = ()
                 ) -> tuple[tuple[TagRow, ...], tuple[TagRow, ...]]:
    """(rows that may be shown, rows that identify the patient), both in the file's order. An element whose
    keyword is in `identifying` is hidden with everything nested in it (a sequence about the patient, such as
    OtherPatientIDsSequence, hides its items whatever their keywords); `skip` (pixel data) is left out."""
    shown: list[TagRow] = []
    hidden: list[TagRow] = []

    def add(row: TagRow, hide: bool) -> None:
        (hidden if hide else shown).append(row._replace(order=len(shown) + len(hidden)))

    def walk(dataset: Dataset, depth: int, hiding: bool) -> None:
        for elem in dataset:
            if elem.keyword in skip:
                continue
            hide = hiding or elem.keyword in identifying
            add(TagRow(f"({elem.tag.group:04X},{elem.tag.element:04X})", elem.keyword or elem.name, _value(elem),
                       depth), hide)
            if elem.VR != "SQ":
                continue
            items = list(elem.value or [])
            for n, item in enumerate(items, 1):
                if len(items) > 1:  # a lone item needs no row of its own: its elements sit under the sequence
                    add(TagRow("", f"Item {n}", "", depth + 1), hide)
                walk(item, depth + (2 if len(items) > 1 else 1), hide)

    walk(ds, 0, False)
    return tuple(shown), tuple(hidden)


def in_file_order(*groups: Iterable[TagRow]) -> list[TagRow]:
    """Shown and revealed rows merged back into the file's order (each nested row under its own sequence)."""
    return sorted((row for group in groups for row in group), key=lambda row: row.order)


def parent_indexes(rows: Sequence[TagRow]) -> list[int | None]:
    """Each row's parent: the index of the row it is nested in (its sequence, or its item row), None at the top.
    The one reading of `depth` that both the search and a tag browser's tree use."""
    parents: list[int | None] = []
    open_rows: list[int] = []  # the rows the current row may be nested in, by depth
    for i, row in enumerate(rows):
        del open_rows[row.depth:]
        parents.append(open_rows[-1] if open_rows else None)
        open_rows.append(i)
    return parents


def matching(rows: Iterable[TagRow], needle: str) -> list[TagRow]:
    """The rows whose tag, keyword or value holds `needle` (any case), each with the rows it is nested in (a
    CodeMeaning is read with its sequence); all rows when the needle is empty."""
    rows = list(rows)
    needle = needle.strip().lower()
    if not needle:
        return rows
    parents = parent_indexes(rows)
    keep: set[int] = set()
    for i, row in enumerate(rows):
        if any(needle in text.lower() for text in row[:3]):
            j: int | None = i
            while j is not None and j not in keep:  # a kept row's sequences are kept already
                keep.add(j)
                j = parents[j]
    return [row for i, row in enumerate(rows) if i in keep]
