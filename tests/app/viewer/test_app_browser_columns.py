"""The file browser at 1280x800: the Image and Patient columns are both in sight (a GUI walk saw "(" of the
Patient column, the rest scrolled off)."""

from __future__ import annotations

from PySide6 import QtCore


def test_image_and_patient_columns_fit_the_pane(window, qtbot, shared_data):
    window.resize(1280, 800)
    window.show()
    film = shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA" / "person1000_bacteria_2931.jpeg"
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm"), str(film)])
    qtbot.waitUntil(lambda: len(window.images) == 2, timeout=60000)
    browser = window.browser
    assert browser.columnWidth(1) >= browser.fontMetrics().horizontalAdvance("(hidden)")
    assert browser.columnWidth(0) + browser.columnWidth(1) <= browser.viewport().width()
    assert browser.columnWidth(0) >= 120


def test_thumbnails_are_whole_and_a_short_file_name_is_not_cut(window, qtbot, shared_data):
    """A GUI walk saw every thumbnail as a thin strip (uniform row heights followed the study row, which has no
    icon) and an NIH name as "0000….jpg" at 1280x800."""
    window.resize(1280, 800)
    window.show()
    nih = shared_data / "cxr-nih-adult" / "images" / "00000261_002.jpg"
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm"), str(nih)])
    qtbot.waitUntil(lambda: len(window.images) == 2, timeout=60000)
    browser = window.browser
    row = browser.findItems(nih.name, QtCore.Qt.MatchFlag.MatchExactly | QtCore.Qt.MatchFlag.MatchRecursive, 0)[0]
    assert browser.visualItemRect(row).height() >= browser.iconSize().height()
    # a child row's text starts after two indents (the study's branch and its own) and the thumbnail
    room = browser.columnWidth(0) - 2 * browser.indentation() - browser.iconSize().width() - 8
    assert room >= browser.fontMetrics().horizontalAdvance(nih.name)


def test_sixty_nih_films_keep_their_whole_names(window, qtbot, shared_data, tmp_path):
    """A GUI walk opened 60 NIH films at 1400 px: "00000261_002.jpg" read "000002…02.jpg", the empty Patient
    column and the scroll bar taking the room. No film has a patient: the column is hidden until one does."""
    window.resize(1400, 860)
    window.show()
    folder = tmp_path / "nih60"
    folder.mkdir()
    for film in sorted((shared_data / "cxr-nih-adult" / "images").iterdir())[:60]:
        (folder / film.name).symlink_to(film)
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: len(window.images) == 60 and not window.busy(), timeout=120000)
    browser = window.browser
    qtbot.waitUntil(lambda: browser.verticalScrollBar().isVisible(), timeout=5000)
    assert browser.isColumnHidden(1)
    room = browser.columnWidth(0) - 2 * browser.indentation() - browser.iconSize().width() - 8
    assert room >= max(browser.fontMetrics().horizontalAdvance(f.name) for f in folder.iterdir())
    assert browser.columnWidth(0) <= browser.viewport().width()
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])  # a DICOM with a patient: the column is back
    qtbot.waitUntil(lambda: len(window.images) == 61 and not window.busy(), timeout=60000)
    assert not browser.isColumnHidden(1)
