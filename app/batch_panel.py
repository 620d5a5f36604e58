"""Batch scoring: a folder in, a sortable table of per-image scores out, exportable as CSV."""

from __future__ import annotations

import csv

from PySide6 import QtCore, QtWidgets


class BatchPanel(QtWidgets.QWidget):
    folder_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 0)
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        choose = QtWidgets.QPushButton("Score a folder…")
        choose.clicked.connect(self._choose)
        export = QtWidgets.QPushButton("Export CSV…")
        export.clicked.connect(self._export)
        self.status = QtWidgets.QLabel("Scores every image of a folder with the labels of the Zero-shot tab.")
        self.status.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(choose)
        row.addWidget(export)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)

    def _choose(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder to score")
        if folder:
            self.folder_requested.emit(folder)

    def show_results(self, labels: list[str], rows: list[dict]) -> None:
        self.table.setSortingEnabled(False)
        headers = ["File", "Top label", *labels, "Error"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            self.table.setItem(i, 0, QtWidgets.QTableWidgetItem(row["path"]))
            scores = row.get("scores", {})
            self.table.setItem(i, 1, QtWidgets.QTableWidgetItem(max(scores, key=scores.get) if scores else ""))
            for j, label in enumerate(labels):
                item = QtWidgets.QTableWidgetItem()
                if label in scores:
                    item.setData(QtCore.Qt.ItemDataRole.DisplayRole, round(scores[label], 4))
                self.table.setItem(i, 2 + j, item)
            self.table.setItem(i, len(headers) - 1, QtWidgets.QTableWidgetItem(row.get("error", "")))
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        errors = sum(1 for r in rows if "error" in r)
        self.status.setText(f"{len(rows) - errors} image(s) scored, {errors} unreadable. Research use only.")

    def write_csv(self, path: str) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())])
            for r in range(self.table.rowCount()):
                writer.writerow([(self.table.item(r, c).text() if self.table.item(r, c) else "")
                                 for c in range(self.table.columnCount())])

    def _export(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export scores", "scores.csv", "CSV (*.csv)")
        if path:
            self.write_csv(path)
