"""A file handed over by the desktop (QFileOpenEvent, as macOS Finder sends it) opens like a dropped file."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from app.file_open import FileOpenFilter


def test_file_open_event_loads_the_dicom(window, qtbot, shared_data):
    app = QtWidgets.QApplication.instance()
    filt = FileOpenFilter(window.open_paths, window)
    app.installEventFilter(filt)
    try:
        path = str(shared_data / "dicom" / "RG1_J2KR.dcm")
        QtWidgets.QApplication.sendEvent(app, QtGui.QFileOpenEvent(path))
        qtbot.waitUntil(lambda: len(window.images) == 1, timeout=20000)
        assert window.images[0].metadata.photometric == "MONOCHROME1"
    finally:
        app.removeEventFilter(filt)
