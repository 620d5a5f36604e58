"""Batch scoring: a folder in, a sortable table of per-image scores out (zero-shot, or a classifier's calibrated
probabilities with its decisions), exportable as CSV."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.panels.label_marks import OUTSIDE, label_marks, marks_legend, wrapped
from app.settings import Settings
from app.viewer.elide import ElideDelegate
from medflip_core.errors import MedflipError
from medflip_core.inference.batch import BatchRun, Row, format_score, has_decisions, write_csv
from medflip_core.inference.label_specificity import ALIKE_TIP
from medflip_core.inference.ood import brief
from medflip_core.inference.validated_labels import UNVALIDATED_TIP
from medflip_core.inference.zeroshot import uncalibrated_warning

SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
ROW_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2  # on a row's File cell: the row's index in BatchPanel.rows
CSV_DIR_KEY = "batch_csv_dir"  # settings: the folder the last batch CSV was saved to
OOD_TINT = QtGui.QColor("#fff1d6")  # rows of films out of the model's distribution


class _Item(QtWidgets.QTableWidgetItem):
    """A cell shown as text and sorted by its value (numbers as numbers, empty last)."""

    def __init__(self, text: str, key: object = None, tooltip: str = "") -> None:
        super().__init__(text)
        self.setData(SORT_ROLE, text if key is None else key)
        if tooltip:
            self.setToolTip(tooltip)

    def __lt__(self, other: QtWidgets.QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if isinstance(a, float) and isinstance(b, float):
            return a < b
        if isinstance(a, float) != isinstance(b, float):
            return isinstance(a, float)
        return str(a) < str(b)


class BatchPanel(QtWidgets.QWidget):
    folder_requested = QtCore.Signal(str)
    cancel_requested = QtCore.Signal()
    film_requested = QtCore.Signal(str)  # a row double-clicked: its film, to look at in the viewer

    def __init__(self, settings: Settings | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.rows: list[Row] = []
        self._legend = ""  # what the shown batch's marks and counts mean (kept when its CSV is saved)
        self.labels: list[str] = []
        self.run: BatchRun | None = None  # what scored the rows (model, prompts), for the CSV
        self.folder = ""  # the folder the rows came from
        self.table = QtWidgets.QTableWidget(0, 0)
        # the table elides in the middle: the OOD column keeps a warning's first words ("⚠ unlike traini…"), a
        # file name its end (two Kermany films both read "K_NORMAL2-…-0001.jpeg")
        self._elide_right = ElideDelegate(QtCore.Qt.TextElideMode.ElideRight, self.table)
        self._keep_end = ElideDelegate(QtCore.Qt.TextElideMode.ElideLeft, self.table)
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.table.setToolTip("Double-click a row to open its film in the viewer")
        self.table.cellDoubleClicked.connect(self._row_opened)
        self.choose = QtWidgets.QPushButton("Score a folder…")
        self.choose.clicked.connect(self._choose)
        self.cancel = QtWidgets.QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancel_requested)
        self.export = QtWidgets.QPushButton("Export CSV…")
        self.export.setEnabled(False)
        self.export.clicked.connect(self._export)
        self.status = QtWidgets.QLabel("Scores every image of a folder as the Zero-shot tab does: with its labels, "
                                       "or with the selected classifier's own classes and decisions.")
        self.status.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.choose)
        row.addWidget(self.cancel)
        row.addWidget(self.export)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)

    def choose_start_dir(self) -> Path:
        """Where "Folder to score" opens: beside the folder scored last, else the home folder (a GUI walk: it
        opened in the app's own working folder)."""
        last = Path(self.folder).parent if self.folder else None
        return last if last is not None and last.is_dir() else Path.home()

    def _choose(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder to score", str(self.choose_start_dir()))
        if folder:
            self.folder_requested.emit(folder)

    def set_running(self, folder: str) -> None:
        """A new folder is being scored: the previous folder's rows go (they would be exported as this one's)."""
        self.choose.setEnabled(False)
        self.cancel.setEnabled(True)
        self.rows, self.labels, self.run = [], [], None
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.export.setEnabled(False)
        self.status.setText(f"Scoring {Path(folder).name} …")

    def _idle(self) -> None:
        self.choose.setEnabled(True)
        self.cancel.setEnabled(False)

    def show_failure(self, message: str) -> None:
        """Nothing to show (e.g. an empty folder): the old table goes, the reason stays."""
        self._idle()
        self.rows, self.labels, self.run = [], [], None
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.export.setEnabled(False)
        self.status.setText(f"⚠ {message}")

    def show_results(self, labels: list[str], rows: list[Row], cancelled: bool = False,
                     run: BatchRun | None = None, folder: str = "") -> None:
        self._idle()
        self.rows, self.labels, self.run, self.folder = rows, labels, run, folder
        decided = has_decisions(rows)
        self.table.setSortingEnabled(False)
        headers = ["File", "Top label", *labels, *(["Decision"] if decided else []), "OOD", "Error"]
        ood_col, error_col = len(headers) - 2, len(headers) - 1
        self.table.clear()
        for col in range(self.table.columnCount()):  # the previous run's OOD column may be another one
            self.table.setItemDelegateForColumn(col, None)
        self.table.setColumnCount(len(headers))
        self.table.setItemDelegateForColumn(0, self._keep_end)
        self.table.setItemDelegateForColumn(ood_col, self._elide_right)
        self.table.setHorizontalHeaderLabels(headers)
        self.table.horizontalHeaderItem(ood_col).setToolTip(
            "Out of distribution: why the model's scores may not apply to this image (hover a cell)")
        uncalibrated = set(run.uncalibrated) if run else set()
        unvalidated = set(run.unvalidated) if run else set()
        alike = set(run.alike) if run else set()
        marks: set[str] = set()  # the marks in use, for the legend
        for j, label in enumerate(labels):  # as beside the Zero-shot tab's bars: not a calibrated probability
            suffix, tip = label_marks(label, label in uncalibrated, UNVALIDATED_TIP if label in unvalidated else None,
                                      ALIKE_TIP if label in alike else None)
            marks |= set(suffix.split()) - {OUTSIDE}  # † has its own sentence in the legend
            if suffix:
                header = self.table.horizontalHeaderItem(2 + j)
                header.setText(label + suffix)
                header.setToolTip(wrapped(tip))
        if decided:
            self.table.horizontalHeaderItem(2 + len(labels)).setToolTip(
                "Classes at or above their decision threshold (chosen on the classifier's validation patients)")
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            scores = row.get("scores", {})
            warnings = row.get("warnings", [])
            name = _Item(Path(row["path"]).name,
                         tooltip="\n".join([row["path"], *(f"⚠ {w}" for w in warnings), *row.get("notes", [])]))
            name.setData(ROW_ROLE, i)
            self.table.setItem(i, 0, name)
            self.table.setItem(i, 1, _Item(row.get("top", "")))
            for j, label in enumerate(labels):
                cell = _Item(format_score(scores[label]), float(scores[label])) if label in scores else _Item("")
                self.table.setItem(i, 2 + j, cell)
            if decided:
                positive = [c for c, yes in row.get("decisions", {}).items() if yes]
                self.table.setItem(i, 2 + len(labels), _Item(", ".join(positive), tooltip=", ".join(positive)))
            self.table.setItem(i, ood_col, _Item(f"⚠ {brief(warnings)}" if warnings else "",
                                                 tooltip="\n".join(warnings)))
            self.table.setItem(i, error_col, _Item(row.get("error", ""), tooltip=row.get("error", "")))
            if warnings:  # the whole row is tinted: sorted by a score, a flagged film stands out where it lands
                for col in range(len(headers)):
                    self.table.item(i, col).setBackground(OOD_TINT)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        for col, widest in ((0, 170), (1, 110), (ood_col, 90), (error_col, 110)):  # elided: tooltips have it all
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), widest))
        errors = sum(1 for r in rows if "error" in r)
        flagged = sum(1 for r in rows if r.get("warnings"))
        kinds = sorted({r["probabilities"] for r in rows if r.get("probabilities")})
        what = (f"classified ({'; '.join(kinds) or 'probabilities'}; decided by the classifier's rule)" if decided
                else "scored")
        modes = sorted({r["label_mode"] for r in rows if r.get("label_mode")})
        by = f" by {run.model}" if run else ""
        how = f" ({', '.join(modes)})" if modes else ""
        # one line each (a GUI walk read the one paragraph with brackets in brackets as dense): what was scored,
        # what could not be, what the marks say
        lines = [f"{len(rows) - errors} image(s) {what}{by}{how}"
                 f"{' — cancelled: the rest was not scored' if cancelled else ''}.",
                 # the Zero-shot tab shows per cent: a GUI walk compared 0.5600 here with 56.0 % there
                 f"Every score is a fraction of 1, as in the CSV ({format_score(0.752)} is 75.2 % on the Zero-shot "
                 "tab).",
                 f"{errors} unreadable · {flagged} out of the model's distribution (⚠ in their rows: their scores do "
                 "not apply, and they get no top label)."]
        if uncalibrated:
            lines.append(f"{OUTSIDE} {uncalibrated_warning([lb for lb in labels if lb in uncalibrated])}")
        if marks:
            lines.append(marks_legend(marks).replace("hover a name", "hover a column"))
        self._legend = "<br>".join([*lines, "Research use only."])
        self.status.setText(self._legend)
        self.export.setEnabled(bool(rows))

    def _row_opened(self, row: int, _column: int) -> None:
        """A GUI walk: a surprising score had to be found in the browser by hand."""
        item = self.table.item(row, 0)
        if item is not None and item.data(ROW_ROLE) is not None:
            self.film_requested.emit(self.rows[int(item.data(ROW_ROLE))]["path"])

    def rows_on_screen(self) -> list[Row]:
        """The rows in the table's current order (after any sorting by a column)."""
        return [self.rows[self.table.item(r, 0).data(ROW_ROLE)] for r in range(self.table.rowCount())]

    def write_csv(self, path: str) -> Path:
        """The rows as on screen, with the run's model, label mode and prompts (inference.batch.write_csv)."""
        return write_csv(self.rows_on_screen(), self.labels, path, self.run)

    def export_to(self, path: str) -> None:
        try:
            written = self.write_csv(path)
        except (OSError, MedflipError) as exc:
            self.status.setText(f"⚠ Could not save the CSV: {exc}")
            return
        if self.settings is not None:
            self.settings.set(CSV_DIR_KEY, str(written.parent))
        # what the marks mean stays (a GUI walk: the save sentence replaced it)
        where = Path(written)  # the name first, the folder after it: a long path wrapped after its first "/"
        self.status.setText(f"{self._legend}<br>Saved {len(self.rows)} row(s) to {where.name} (in {where.parent}).")
        self.status.setToolTip(str(where))

    def suggested_csv_path(self) -> Path:
        """Where the Save dialog opens: the folder the last CSV was saved to (if it still exists), else the
        folder that was scored; the name says which folder the scores are of."""
        last = self.settings.get(CSV_DIR_KEY) if self.settings is not None else None
        folder = Path(self.folder) if self.folder else Path.home()
        if last and Path(last).is_dir():
            start = Path(last)
        else:  # a read-only data folder (an archive, a share) cannot take the file: the home folder then
            start = folder if os.access(folder, os.W_OK) else Path.home()
        return start / f"{folder.name or 'batch'}_scores.csv"

    def _export(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export scores", str(self.suggested_csv_path()),
                                                        "CSV (*.csv)")
        if path:
            self.export_to(path)
