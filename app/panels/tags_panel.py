"""DICOM tags with search; patient-identifying tags only after the user reveals them."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.text_colours import NOTE, tint
from medflip_core.imaging import Radiograph

KEYWORD_WIDTH = 150  # px at most: "PurposeOfReferenceCodeSequence" took the room the values need


class TagsPanel(QtWidgets.QWidget):
    reveal_changed = QtCore.Signal(bool)  # the browser's Patient column follows the same switch

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.radiograph: Radiograph | None = None
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Search tags (keyword, tag or value)")
        self.search.textChanged.connect(self.refresh)
        self.reveal = QtWidgets.QCheckBox("Show patient-identifying tags")
        self.reveal.setToolTip("Name, ID, birth date and similar tags are hidden unless you ask for them")
        self.reveal.toggled.connect(self.refresh)
        self.reveal.toggled.connect(self.reveal_changed)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Tag", "Keyword", "Value"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        # the value takes the room (a GUI walk read "Non-ossifying fibroma of …" beside a keyword column sized to
        # its longest keyword); a long keyword is elided, its whole text in the tooltip
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.hidden_matches = QtWidgets.QLabel()  # a search must not look complete while it hides matches
        tint(self.hidden_matches, NOTE)
        self.hidden_matches.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.search)
        layout.addWidget(self.reveal)
        layout.addWidget(self.hidden_matches)
        layout.addWidget(self.table, 1)

    def set_radiograph(self, rg: Radiograph | None) -> None:
        self.radiograph = rg
        self.refresh()

    def rows(self) -> list[tuple[str, str, str]]:
        if self.radiograph is None:
            return []
        needle = self.search.text().strip().lower()
        rows = self.radiograph.all_tags(reveal_identifying=self.reveal.isChecked())
        return [r for r in rows if not needle or any(needle in c.lower() for c in r)]

    def hidden_match_count(self) -> int:
        """Identifying tags the search matches while they are hidden, by tag or keyword only: a match in a hidden
        value would tell what the value holds (a GUI walk: "patient" found 1 tag and silently hid 5)."""
        needle = self.search.text().strip().lower()
        if self.radiograph is None or not needle or self.reveal.isChecked():
            return 0
        return sum(any(needle in c.lower() for c in row[:2]) for row in self.radiograph.identifying_tags)

    def refresh(self) -> None:
        rg = self.radiograph
        rows = self.rows()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                item = QtWidgets.QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(i, j, item)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)
        self.table.setColumnWidth(1, min(self.table.columnWidth(1), KEYWORD_WIDTH))
        hidden = self.hidden_match_count()
        note = (f"{hidden} patient-identifying tag{'s' if hidden != 1 else ''} also match "
                f"“{self.search.text().strip()}”: tick the box above to see {'them' if hidden != 1 else 'it'}."
                if hidden else "")
        if rg is not None and not rows and not self.search.text().strip():  # an empty table read as broken
            note = f"No tags: a {rg.metadata.format} file has no DICOM header, only pixels."
        self.hidden_matches.setText(note)
        self.hidden_matches.setVisible(bool(note))
        if rg is None:
            self.summary.setText("")
            return
        md = rg.metadata
        spacing = f"{md.pixel_spacing[0]:.3f} × {md.pixel_spacing[1]:.3f} mm" if md.pixel_spacing else "unknown"
        notes = ("<br>" + "<br>".join(rg.notes)) if rg.notes else ""
        self.summary.setText(
            f"<b>{md.format}</b> {md.modality} {md.body_part} {md.view_position} — {md.columns}×{md.rows}, "
            f"{md.photometric}, {md.bits_stored or '?'} bit, spacing {spacing}<br>{md.transfer_syntax}{notes}")
