"""The file browser at 1280x800: the Image and Patient columns are both in sight (a GUI walk saw "(" of the
Patient column, the rest scrolled off)."""

from __future__ import annotations


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
