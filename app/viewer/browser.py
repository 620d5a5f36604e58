"""The study/series/image browser: everything loaded, with thumbnail, patient, date, modality and view."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.viewer.elide import ElideDelegate
from medflip_core.imaging import Radiograph

COLUMNS = ["Image", "Patient", "Study date", "Modality", "View", "Series"]
FOLDER_SOURCE = "the folder's name"  # where a group's title comes from when its images have no DICOM study


def thumbnail(small: np.ndarray) -> QtGui.QIcon:
    """An icon from a Radiograph's uint8 thumbnail (the full pixels are not needed, nor decoded)."""
    small = np.ascontiguousarray(small, dtype=np.uint8)
    h, w = small.shape
    image = QtGui.QImage(small.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    return QtGui.QIcon(QtGui.QPixmap.fromImage(image))


def study_title(rg: Radiograph) -> tuple[str, str]:
    """(the group row's title, where it comes from): a group's row says what the group is, a DICOM study by its
    description ("Study: THORAX") or date, a folder of files by its name ("Folder: PNEUMONIA"). A GUI walk read bare
    headers such as "No Finding" and "PNEUMONIA" (a secondary capture's StudyDescription, a class folder) as the
    model's findings."""
    md = rg.metadata
    if md.study_description:
        return f"Study: {md.study_description}", "the DICOM header's StudyDescription"
    if md.study_date:
        return f"Study of {md.study_date}", "the DICOM header's StudyDate"
    if md.study_instance_uid:
        return "Study (no description)", "the DICOM header"
    return f"Folder: {rg.path.parent.name or rg.path.parent}", FOLDER_SOURCE


def distinct_folder_names(folders: Iterable[Path]) -> dict[Path, str]:
    """Each folder's name, followed by the fewest of its parent folders that tell it from the other folders of
    the same name: "images (cxr-nih-adult)" beside "images (cxr-tb-tbx11k)", "NORMAL" alone. A GUI walk saw two
    groups titled "Folder: images" (NIH and TBX11K both keep their films in a folder called images)."""
    folders = list(dict.fromkeys(folders))
    names: dict[Path, str] = {}
    for folder in folders:
        name = folder.name or str(folder)
        others = [f.parent.parts for f in folders if f != folder and f.name == folder.name]
        parents = folder.parent.parts
        depth = 0
        while others and depth < len(parents):
            depth += 1
            others = [o for o in others if o[-depth:] == parents[-depth:]]
        tail = str(Path(*parents[len(parents) - depth:])) if depth else ""
        names[folder] = f"{name} ({tail})" if tail else name
    return names


class Browser(QtWidgets.QTreeWidget):
    """Grouped by study (DICOM StudyInstanceUID, else the folder); one row per image."""

    image_selected = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(COLUMNS)
        # a 40-px thumbnail and a narrow indent leave a 1280-px window's pane room for a whole NIH-style file name
        self.setIconSize(QtCore.QSize(40, 40))
        self.setIndentation(12)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setMinimumWidth(180)  # 256 made the window's minimum too wide for a 1,093 px (125 %) laptop screen
        self.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)  # a group's title keeps its start and its end
        # a file name keeps its end, where names differ (GUI walk 44: two Kermany films both read "IM-011…1.jpeg")
        self._keep_end = ElideDelegate(QtCore.Qt.TextElideMode.ElideLeft, self, children_only=True)
        self.setItemDelegateForColumn(0, self._keep_end)
        self.header().setStretchLastSection(False)
        self._studies: dict[str, QtWidgets.QTreeWidgetItem] = {}
        self._folders: dict[Path, QtWidgets.QTreeWidgetItem] = {}  # the groups titled by their folder's name
        self._rows: list[QtWidgets.QTreeWidgetItem] = []
        self.currentItemChanged.connect(self._changed)
        self.reveal_patient = False

    def add(self, index: int, rg: Radiograph) -> None:
        self.add_many([(index, rg)])

    def add_many(self, items: list[tuple[int, Radiograph]]) -> None:
        """Rows for (index, image) pairs; the columns are sized once for all of them (a study of 1,000 images
        arrives in chunks, and sizing per row would cost the square of the rows)."""
        for index, rg in items:
            self._add_row(index, rg)
        if not items:
            return
        for col in range(len(COLUMNS)):
            self.resizeColumnToContents(col)
        # the Image and Patient columns fit the pane together (names elided in the middle, whole in the tooltip:
        # a split by patient needs the patient in sight); the other columns follow, scrolled to. The Patient
        # column is hidden while no image has one (PNG/JPEG: a GUI walk saw its empty 60 px cut NIH names to
        # "000002…02.jpg"), and the scroll bar a long folder brings is counted before it shows
        self._hide_empty_patient_column()
        patient = 0 if self.isColumnHidden(1) else min(self.columnWidth(1), 120)
        if patient:
            self.setColumnWidth(1, patient)
        rows_high = (len(self._rows) + len(self._studies)) * (self.iconSize().height() + 4)
        coming = rows_high > self.viewport().height() and not self.verticalScrollBar().isVisible()
        scroll_bar = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent) if coming else 0
        room = self.viewport().width() - patient - 8 - scroll_bar
        self.setColumnWidth(0, max(120, min(self.columnWidth(0), room)))

    def _add_row(self, index: int, rg: Radiograph) -> None:
        md = rg.metadata
        key = md.study_instance_uid or str(rg.path.parent)
        study = self._studies.get(key)
        if study is None:
            title, source = study_title(rg)
            study = QtWidgets.QTreeWidgetItem([title, self._patient(rg), md.study_date, md.modality])
            study.setToolTip(0, f"{title}\n(from {source}, not a finding of the model)\n{rg.path.parent}")
            study.setFlags(study.flags() & ~QtCore.Qt.ItemFlag.ItemIsSelectable)
            # uniform row heights follow the first row, a study's: without this, every thumbnail is a thin strip
            study.setSizeHint(0, QtCore.QSize(0, self.iconSize().height() + 4))
            self.addTopLevelItem(study)
            study.setExpanded(True)
            self._studies[key] = study
            if source == FOLDER_SOURCE:
                self._folders[rg.path.parent] = study
                self._title_folders(rg.path.parent.name)
        row = QtWidgets.QTreeWidgetItem([rg.path.name, self._patient(rg), md.study_date, md.modality or md.format,
                                         md.view_position, md.series_description or md.series_number])
        row.setIcon(0, thumbnail(rg.thumbnail))
        row.setData(0, QtCore.Qt.ItemDataRole.UserRole, index)
        row.setData(0, QtCore.Qt.ItemDataRole.UserRole + 1, rg)
        row.setToolTip(0, str(rg.path))
        study.addChild(row)
        self._rows.append(row)
        if len(self._rows) == 1:
            self.setCurrentItem(row)

    def _title_folders(self, name: str) -> None:
        """The groups of the folders called `name`, each titled so that it differs from the others. A folder's
        group has no patient, date or modality: its title spans the row, the room its parent folders need."""
        same = [folder for folder in self._folders if folder.name == name]
        for folder, shown in distinct_folder_names(same).items():
            group = self._folders[folder]
            title = f"Folder: {shown}"
            group.setText(0, title)
            group.setToolTip(0, f"{title}\n(from {FOLDER_SOURCE}, not a finding of the model)\n{folder}")
            group.setFirstColumnSpanned(not any(group.text(c) for c in range(1, self.columnCount())))

    def set_reveal_patient(self, on: bool) -> None:
        """Show or hide patient names in the Patient column (with the Tags tab's reveal switch)."""
        self.reveal_patient = on
        for row in self._rows:
            rg = row.data(0, QtCore.Qt.ItemDataRole.UserRole + 1)
            row.setText(1, self._patient(rg))
            study = row.parent()
            if study is not None and study.child(0) is row:
                study.setText(1, self._patient(rg))
        self._hide_empty_patient_column()
        self.resizeColumnToContents(1)

    def _hide_empty_patient_column(self) -> None:
        self.setColumnHidden(1, not any(row.text(1) for row in self._rows))

    def _patient(self, rg: Radiograph) -> str:
        if not rg.patient:
            return ""
        return rg.patient.get("PatientName", "") if self.reveal_patient else "(hidden)"

    def select_index(self, index: int) -> None:
        for row in self._rows:
            if row.data(0, QtCore.Qt.ItemDataRole.UserRole) == index:
                self.setCurrentItem(row)
                return

    def following(self, index: int, n: int = 1) -> list[int]:
        """The next `n` images after `index` in the order the browser shows them (what Down selects next)."""
        item = next((r for r in self._rows if r.data(0, QtCore.Qt.ItemDataRole.UserRole) == index), None)
        out: list[int] = []
        while item is not None and len(out) < n:
            item = self.itemBelow(item)
            value = item.data(0, QtCore.Qt.ItemDataRole.UserRole) if item is not None else None
            if value is not None:  # a study's row holds no image
                out.append(int(value))
        return out

    def step(self, delta: int) -> None:
        current = self.currentItem()
        if current in self._rows:
            pos = self._rows.index(current) + delta
            if 0 <= pos < len(self._rows):
                self.setCurrentItem(self._rows[pos])

    def _changed(self, current: QtWidgets.QTreeWidgetItem | None, _prev: object) -> None:
        if current is not None:
            index = current.data(0, QtCore.Qt.ItemDataRole.UserRole)
            if index is not None:
                self.image_selected.emit(int(index))
