"""Opening real files in the window: drag and drop, photometric interpretation, window/level, errors."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui

from medflip_core.imaging import Window


def drop(window, *paths) -> None:
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QtCore.QPointF(window.width() / 2, window.height() / 2)
    event = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                             QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_drop_dicom_shows_it_with_the_right_photometric_interpretation(window, qtbot, shared_data):
    base = shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"
    mono1 = shared_data / "dicom" / "rsna_cr_chest_fake_monochrome1.dcm"
    drop(window, base)
    qtbot.waitUntil(lambda: len(window.images) == 1, timeout=20000)
    shown_base = window.viewer.displayed_pixels().copy()
    drop(window, mono1)
    qtbot.waitUntil(lambda: len(window.images) == 2, timeout=20000)
    qtbot.waitUntil(lambda: window.current == 1, timeout=5000)
    shown_mono1 = window.viewer.displayed_pixels()
    # the same stored pixels labelled MONOCHROME1: displayed correctly, it is the inverse of the baseline
    assert np.abs(shown_mono1 - (1.0 - shown_base)).mean() < 0.02
    assert window.images[1].metadata.inverted and not window.images[0].metadata.inverted


def test_window_level_changes_image_and_readout(window, qtbot, shared_data):
    drop(window, shared_data / "dicom" / "RG1_UNCR.dcm")
    qtbot.waitUntil(lambda: window.viewer.displayed_pixels() is not None, timeout=20000)
    before = window.viewer.displayed_pixels().copy()
    assert "W 30000" in window.viewer.wl_label.text()
    window.viewer.set_window(Window(center=20000, width=8000, source="manual"))
    after = window.viewer.displayed_pixels()
    assert not np.allclose(before, after)
    assert "W 8000" in window.viewer.wl_label.text() and "L 20000" in window.viewer.wl_label.text()
    window.viewer._drag_window(-40.0, 60.0)  # what a right-drag does
    assert window.viewer.window.width > 8000
    window.viewer.preset.setCurrentIndex(1)  # auto (percentiles)
    assert window.viewer.window.source == "percentile"
    window.viewer.invert_box.setChecked(True)
    inverted = window.viewer.displayed_pixels()
    assert "INVERTED" in window.viewer.wl_label.text()  # said on the image's corner, not only by the tick box
    window.viewer.invert_box.setChecked(False)
    assert np.allclose(inverted, 1.0 - window.viewer.displayed_pixels(), atol=1e-6)
    assert "INVERTED" not in window.viewer.wl_label.text()


def test_corrupt_file_shows_an_error_and_the_app_keeps_working(window, qtbot, shared_data, tmp_path):
    bad = tmp_path / "corrupt.dcm"
    bad.write_bytes(b"DICM" * 50)
    drop(window, bad)
    qtbot.waitUntil(lambda: "corrupt.dcm" in window.last_error, timeout=20000)
    assert "corrupt.dcm" in window.statusBar().currentMessage()
    drop(window, shared_data / "dicom" / "nih_dx_secondary_capture.dcm")
    qtbot.waitUntil(lambda: len(window.images) == 1, timeout=20000)
    assert window.viewer.radiograph is window.images[0]


def test_folder_loads_into_the_browser_grouped_by_study(window, qtbot, shared_data):
    window.open_paths([str(shared_data / "dicom")])
    qtbot.waitUntil(lambda: len(window.images) == 8, timeout=60000)
    assert window.browser.topLevelItemCount() >= 3
    window.browser.step(1)
    assert window.current == 1
    # each group says what it is: a StudyDescription of "No Finding" (the NIH secondary capture) read as a finding
    titles = {window.browser.topLevelItem(i).text(0) for i in range(window.browser.topLevelItemCount())}
    assert {"Study: THORAX", "Study: No Finding", "Study of 19010101"} <= titles and "No Finding" not in titles
    nih = next(window.browser.topLevelItem(i) for i in range(window.browser.topLevelItemCount())
               if window.browser.topLevelItem(i).text(0) == "Study: No Finding")
    assert "StudyDescription, not a finding of the model" in nih.toolTip(0)
    kermany = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").glob("*.jpeg"))[0]
    window.open_paths([str(kermany)])
    qtbot.waitUntil(lambda: len(window.images) == 9, timeout=60000)
    titles = [window.browser.topLevelItem(i).text(0) for i in range(window.browser.topLevelItemCount())]
    assert "Folder: NORMAL" in titles  # a class folder's name is no label of the model's


def test_tags_hide_identifying_until_revealed(window, qtbot, shared_data):
    drop(window, shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")
    qtbot.waitUntil(lambda: window.tags.radiograph is not None, timeout=20000)
    keywords = {row[1] for row in window.tags.rows()}
    assert "PatientName" not in keywords and "PatientID" not in keywords
    assert "Modality" in keywords
    window.tags.reveal.setChecked(True)
    assert "PatientID" in {row[1] for row in window.tags.rows()}
    window.tags.search.setText("modality")
    assert all("modality" in " ".join(r[:3]).lower() for r in window.tags.rows())
    # a GUI walk: with identifiers hidden, a search for "patient" showed one tag and hid the others silently
    window.tags.reveal.setChecked(False)
    window.tags.search.setText("patient")
    hidden = [r for r in window.tags.radiograph.identifying_tags if "patient" in (r[0] + r[1]).lower()]
    assert len(hidden) >= 2 and window.tags.hidden_match_count() == len(hidden)
    assert window.tags.hidden_matches.text().startswith(f"{len(hidden)} patient-identifying tags also match")
    assert not window.tags.hidden_matches.isHidden()
    name = str(window.tags.radiograph.patient.get("PatientName") or "")
    if len(name) > 3:  # a hidden VALUE never counts: the count would tell what the value holds
        window.tags.search.setText(name[:4])
        assert window.tags.hidden_match_count() == 0
    window.tags.reveal.setChecked(True)
    assert window.tags.hidden_matches.isHidden()


def recent_entries(window) -> list:
    """The Open recent menu's entries (not its separator and Clear recent)."""
    return [a for a in window.recent_menu.actions() if not a.isSeparator() and a.text() != "Clear recent"]


def test_recent_gets_one_entry_per_drop_and_duplicates_are_named(window, qtbot, shared_data, tmp_path):
    links = []
    for i in range(30):
        links.append(tmp_path / f"link{i:02d}.dcm")
        links[-1].symlink_to(shared_data / "dicom" / "RG1_UNCR.dcm")
    drop(window, *links)
    qtbot.waitUntil(lambda: not window.busy() and len(window.images) == 1, timeout=30000)
    assert [a.text() for a in recent_entries(window)] == [f"{links[0]} and 29 more files"]
    assert window.messages.text() == "29 files are the same image as link00.dcm and were opened once."
    assert "link29.dcm" in window.messages.details.toPlainText()
    drop(window, shared_data / "dicom")  # a folder: one entry, the folder (its CR film is the one already open)
    qtbot.waitUntil(lambda: not window.busy() and len(window.images) == 8, timeout=60000)
    assert [a.text() for a in recent_entries(window)] == [str(shared_data / "dicom"), f"{links[0]} and 29 more files"]
    recent_entries(window)[1].trigger()  # re-opens the whole drop, which is already open
    qtbot.waitUntil(lambda: not window.busy(), timeout=30000)
    assert len(window.images) == 8 and len(recent_entries(window)) == 2
    assert recent_entries(window)[0].text() == f"{links[0]} and 29 more files"


def test_an_empty_folders_banner_goes_when_a_later_folder_opens(window, qtbot, shared_data, tmp_path):
    """A GUI walk: "emptydir: the folder contains no images" stayed on screen after a later folder opened fine."""
    empty = tmp_path / "emptydir"
    empty.mkdir()
    window.open_paths([str(empty)])
    qtbot.waitUntil(lambda: "contains no images" in window.messages.text() and not window.busy(), timeout=20000)
    assert window.messages.isVisible()
    window.open_paths([str(shared_data / "dicom" / "nih_dx_secondary_capture.dcm")])
    qtbot.waitUntil(lambda: len(window.images) == 1 and not window.busy(), timeout=20000)
    assert not window.messages.isVisible()


def test_a_file_without_tags_says_so(window, qtbot, shared_data):
    """A GUI walk: the Tags tab of a JPEG was an empty table, with nothing to say why."""
    film = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").glob("*.jpeg"))[0]
    drop(window, film)
    qtbot.waitUntil(lambda: window.tags.radiograph is not None, timeout=20000)
    assert window.tags.rows() == []
    assert window.tags.hidden_matches.text().startswith("No tags: a ") and "no DICOM header" in \
        window.tags.hidden_matches.text()
    assert not window.tags.hidden_matches.isHidden()
    drop(window, shared_data / "dicom" / "RG1_UNCR.dcm")  # a DICOM: its tags, no such line
    qtbot.waitUntil(lambda: window.tags.radiograph is not None and window.tags.radiograph.path.name == "RG1_UNCR.dcm",
                    timeout=20000)
    assert window.tags.rows()
    assert "No tags" not in window.tags.hidden_matches.text()
