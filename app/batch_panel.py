"""Batch scoring: a folder in, a sortable table of per-image scores out (zero-shot, or a classifier's calibrated
probabilities with its decisions), exportable as CSV."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medflip_core.batch import Row, format_score, has_decisions, write_csv
from medflip_core.errors import MedflipError

SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1


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

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[Row] = []
        self.labels: list[str] = []
        self.table = QtWidgets.QTableWidget(0, 0)
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
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

    def _choose(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder to score")
        if folder:
            self.folder_requested.emit(folder)

    def set_running(self, folder: str) -> None:
        self.choose.setEnabled(False)
        self.cancel.setEnabled(True)
        self.status.setText(f"Scoring {Path(folder).name} …")

    def _idle(self) -> None:
        self.choose.setEnabled(True)
        self.cancel.setEnabled(False)

    def show_failure(self, message: str) -> None:
        """Nothing to show (e.g. an empty folder): the old table goes, the reason stays."""
        self._idle()
        self.rows, self.labels = [], []
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.export.setEnabled(False)
        self.status.setText(f"⚠ {message}")

    def show_results(self, labels: list[str], rows: list[Row], cancelled: bool = False) -> None:
        self._idle()
        self.rows, self.labels = rows, labels
        decided = has_decisions(rows)
        self.table.setSortingEnabled(False)
        headers = ["File", "Top label", *labels, *(["Decision"] if decided else []), "OOD", "Error"]
        ood_col, error_col = len(headers) - 2, len(headers) - 1
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.horizontalHeaderItem(ood_col).setToolTip(
            "Out of distribution: why the model's scores may not apply to this image (hover a cell)")
        if decided:
            self.table.horizontalHeaderItem(2 + len(labels)).setToolTip(
                "Classes at or above their decision threshold (chosen on the classifier's validation patients)")
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            scores = row.get("scores", {})
            warnings = row.get("warnings", [])
            self.table.setItem(i, 0, _Item(Path(row["path"]).name, tooltip=row["path"]))
            self.table.setItem(i, 1, _Item(row.get("top", "")))
            for j, label in enumerate(labels):
                cell = _Item(format_score(scores[label]), float(scores[label])) if label in scores else _Item("")
                self.table.setItem(i, 2 + j, cell)
            if decided:
                positive = [c for c, yes in row.get("decisions", {}).items() if yes]
                self.table.setItem(i, 2 + len(labels), _Item(", ".join(positive), tooltip=", ".join(positive)))
            self.table.setItem(i, ood_col, _Item(f"⚠ {len(warnings)}" if warnings else "",
                                                 tooltip="\n".join(warnings)))
            self.table.setItem(i, error_col, _Item(row.get("error", ""), tooltip=row.get("error", "")))
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        for col in (0, 1, error_col):  # long names and errors are elided; the tooltip has them whole
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), 170 if col == 0 else 110))
        errors = sum(1 for r in rows if "error" in r)
        flagged = sum(1 for r in rows if r.get("warnings"))
        what = "classified (calibrated, decisions at the stored thresholds)" if decided else "scored"
        self.status.setText(f"{len(rows) - errors} image(s) {what}, {errors} unreadable, {flagged} out of the "
                            f"model's distribution{' (cancelled: the rest was not scored)' if cancelled else ''}. "
                            "Research use only.")
        self.export.setEnabled(bool(rows))

    def write_csv(self, path: str) -> Path:
        return write_csv(self.rows, self.labels, path)

    def export_to(self, path: str) -> None:
        try:
            written = self.write_csv(path)
        except (OSError, MedflipError) as exc:
            self.status.setText(f"⚠ Could not save the CSV: {exc}")
            return
        self.status.setText(f"Saved {len(self.rows)} row(s) to {written}.")

    def _export(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export scores", "scores.csv", "CSV (*.csv)")
        if path:
            self.export_to(path)
