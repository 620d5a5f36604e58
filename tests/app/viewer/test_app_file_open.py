"""A file handed over by the desktop (QFileOpenEvent, as macOS Finder sends it) opens like a dropped file."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from app.viewer.file_open import FileOpenFilter


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


def test_a_load_shows_n_of_N_puts_the_first_image_on_screen_and_can_be_cancelled(window, qtbot, shared_data,
                                                                                   tmp_path, distinct_copies):
    import re

    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    # lossless JPEG 2000: about a second of decoding per film, so the load is still running while we look
    files = [str(f) for f in distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "study", 8,
                                             "film{:02d}.dcm")]
    window.open_paths(files)
    qtbot.waitUntil(lambda: re.fullmatch(r"[1-7] of 8", window.load_progress.text()) is not None, timeout=30000)
    qtbot.waitUntil(lambda: window.viewer.displayed_pixels() is not None, timeout=30000)
    assert window.busy() and len(window.images) < 8  # the first image is shown before the load has ended
    assert window.load_progress.isVisible() and window.load_cancel.isVisible()
    QTest.mouseClick(window.load_cancel, QtCore.Qt.MouseButton.LeftButton)
    # the load ends within a file or two (other work, e.g. scoring the image on screen, may go on: not waited for)
    qtbot.waitUntil(lambda: window.last_load is not None, timeout=20000)
    assert 1 <= len(window.images) < 8
    assert window.last_load.cancelled and 1 <= window.last_load.done < 8 and window.last_load.total == 8
    assert not window.load_progress.isVisible() and not window.load_cancel.isVisible()
    assert window.viewer.radiograph is window.images[0]  # what was read stays open and usable


def test_closing_the_window_stops_a_load_at_once(qtbot, shared_data, tmp_path, distinct_copies):

    from app.window.main_window import MainWindow

    files = [str(f) for f in distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "study", 10,
                                             "film{:02d}.dcm")]
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.open_paths(files)
    qtbot.waitUntil(lambda: len(w.images) >= 1, timeout=30000)
    task = w._loads[0]
    w.close()
    assert task.cancelled
    qtbot.waitUntil(lambda: task.ended, timeout=5000)  # the file in hand is finished, the other films are not read
    assert len(w.images) < 10
