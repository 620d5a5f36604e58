"""DICOM tags with search, a sequence's items nested under it; patient-identifying tags only after the user
reveals them (the core decides which those are: Radiograph.all_tags)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from app.text_colours import NOTE, tint
from medflip_core.imaging import Radiograph
from medflip_core.imaging.tag_rows import TagRow, matching, parent_indexes

KEYWORD_WIDTH = 150  # px: the Keyword column's least width when it must share the room with long values
VALUE_WIDTH = 150  # px: the Value column's least width (a longer value wraps onto more lines)


def keyword_width(keywords: Sequence[int], words: Sequence[int], room: int) -> int:
    """The Keyword column's width (px) out of `room`, the Value column taking the rest: each row's keyword width
    and the width of its value's longest word are given (a value wraps at its spaces, so only a word wider than its
    column, a UID, is cut). The width that cuts the fewest cells, the widest of those: the keywords whole where
    the values leave the room (a GUI walk saw "Timezone…tFromUTC" beside 250 px of empty values), between
    KEYWORD_WIDTH and all but VALUE_WIDTH of the room."""
    widest = max(keywords, default=0)
    most = min(widest, max(KEYWORD_WIDTH, room - VALUE_WIDTH))
    if widest <= KEYWORD_WIDTH:
        return widest
    candidates = {w for w in (*keywords, *(room - v for v in words)) if KEYWORD_WIDTH <= w <= most}
    candidates |= {KEYWORD_WIDTH, most}

    def cut(width: int) -> int:
        return sum(k > width for k in keywords) + sum(v > room - width for v in words)

    return min(candidates, key=lambda width: (cut(width), -width))


class _WrappedValue(QtWidgets.QStyledItemDelegate):
    """A value as tall as its lines at its column's width (the tree measures a row as one line otherwise)."""

    def sizeHint(self, option: QtWidgets.QStyleOptionViewItem, index: QtCore.QModelIndex) -> QtCore.QSize:
        view = self.parent()
        if not isinstance(view, QtWidgets.QTreeView):
            return super().sizeHint(option, index)
        wrapped = QtWidgets.QStyleOptionViewItem(option)
        self.initStyleOption(wrapped, index)
        wrapped.features |= QtWidgets.QStyleOptionViewItem.ViewItemFeature.WrapText
        wrapped.rect = QtCore.QRect(0, 0, view.columnWidth(index.column()), 1)
        return view.style().sizeFromContents(QtWidgets.QStyle.ContentsType.CT_ItemViewItem, wrapped,
                                             QtCore.QSize(), view)


class _TagTree(QtWidgets.QTreeWidget):
    """Rows nested by indentation alone, in the Keyword column as in the DICOM standard's tables (">Code
    Value"): always expanded, no branch marks, the Tag column kept narrow for the keywords and values."""

    def drawBranches(self, painter: QtGui.QPainter, rect: QtCore.QRect, index: QtCore.QModelIndex) -> None:
        pass


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
        self.tree = _TagTree()
        self.tree.setHeaderLabels(["Tag", "Keyword", "Value"])
        self.tree.setTreePosition(1)  # a sequence's items indented under its keyword; the tags line up
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        self.tree.setIndentation(14)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)  # the value takes the rest; a cut keyword or value is whole on hover
        self.tree.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.tree.setWordWrap(True)  # a long value wraps ("Non-ossifying fibroma of distal tibia" stays whole)
        self._wrapped = _WrappedValue(self.tree)
        self.tree.setItemDelegateForColumn(2, self._wrapped)
        # the rows' heights follow the columns' widths (the tree keeps the heights it measured first)
        header.sectionResized.connect(self.tree.doItemsLayout)
        self._shown: list[TagRow] = []  # the rows in the tree
        self.tree.viewport().installEventFilter(self)
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
        layout.addWidget(self.tree, 1)

    def _fit_columns(self) -> None:
        """The Tag column to its contents; the Keyword column as wide as its (indented) keywords where the values
        leave the room (keyword_width), the Value column the rest."""
        tree = self.tree
        tree.resizeColumnToContents(0)
        margin = 2 * (tree.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin, None, tree) + 1) + 2
        metrics = tree.fontMetrics()
        keywords = [row.depth * tree.indentation() + metrics.horizontalAdvance(row.keyword) + margin
                    for row in self._shown]
        words = [max(map(metrics.horizontalAdvance, row.value.split() or [""])) + margin for row in self._shown]
        room = tree.viewport().width() - tree.columnWidth(0)
        tree.setColumnWidth(1, keyword_width(keywords, words, room))

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if watched is self.tree.viewport() and event.type() == QtCore.QEvent.Type.Resize:
            self._fit_columns()  # a wider window (or the scroll bar gone) gives the keywords their room again
        return super().eventFilter(watched, event)

    def set_radiograph(self, rg: Radiograph | None) -> None:
        self.radiograph = rg
        self.refresh()

    def rows(self) -> list[TagRow]:
        """The rows shown: those the search matches, each with the sequences it is nested in."""
        if self.radiograph is None:
            return []
        return matching(self.radiograph.all_tags(reveal_identifying=self.reveal.isChecked()), self.search.text())

    def hidden_match_count(self) -> int:
        """Identifying tags the search matches while they are hidden, by tag or keyword only: a match in a hidden
        value would tell what the value holds (a GUI walk: "patient" found 1 tag and silently hid 5)."""
        needle = self.search.text().strip().lower()
        if self.radiograph is None or not needle or self.reveal.isChecked():
            return 0
        return sum(any(needle in c.lower() for c in row[:2]) for row in self.radiograph.identifying_tags
                   if not row.is_item)

    def refresh(self) -> None:
        rg = self.radiograph
        rows = self._shown = self.rows()
        self.tree.clear()
        items: list[QtWidgets.QTreeWidgetItem] = []
        for row, parent in zip(rows, parent_indexes(rows), strict=True):
            item = QtWidgets.QTreeWidgetItem([row.tag, row.keyword, row.value])
            for column, text in enumerate(row[:3]):
                item.setToolTip(column, text)
            if parent is None:
                self.tree.addTopLevelItem(item)
            else:
                items[parent].addChild(item)
            items.append(item)
        self.tree.expandAll()
        self._fit_columns()
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
