"""Window/level presets chosen again after a drag, and the cursor read-out of a new image (issue 23 item 8)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


def _option(box: QtWidgets.QComboBox) -> QtWidgets.QStyleOptionComboBox:
    option = QtWidgets.QStyleOptionComboBox()
    option.initFrom(box)
    option.rect = box.rect()
    return option


def open_files(window, qtbot, *paths) -> None:
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: len(window.images) == len(paths) and window.viewer.displayed_pixels() is not None,
                    timeout=60000)


def test_the_current_preset_chosen_again_after_a_drag_restores_its_window(window, qtbot, shared_data):
    viewer = window.viewer
    open_files(window, qtbot, shared_data / "dicom" / "RG1_UNCR.dcm")
    qtbot.keyClick(viewer, QtCore.Qt.Key.Key_2)  # auto (percentiles)
    auto = viewer.window
    assert auto.source == "percentile"
    viewer._drag_window(-40.0, 60.0)  # what a right-drag does
    assert viewer.window.width != auto.width
    # the box says no preset is on screen (a GUI walk read "DICOM window" beside a "(manual)" read-out)
    assert viewer.preset.currentIndex() == -1 and viewer.preset.currentText() == ""
    assert viewer.preset.placeholderText() == "Manual (dragged)"
    qtbot.keyClick(viewer, QtCore.Qt.Key.Key_2)  # the same key again: back to the preset, not ignored
    assert (viewer.window.width, viewer.window.center) == (auto.width, auto.center)
    assert viewer.preset.currentIndex() == 1
    viewer._drag_window(30.0, -20.0)
    viewer.preset.activated.emit(1)  # the same item picked again from the list
    assert (viewer.window.width, viewer.window.center) == (auto.width, auto.center)
    viewer._drag_window(30.0, -20.0)
    viewer.choose_preset(0)  # the View menu's path: the file's own window, which the image opened with
    assert viewer.window.source != "percentile" and viewer.preset.currentIndex() == 0


def test_the_cursor_read_out_is_cleared_when_another_image_is_shown(window, qtbot, shared_data):
    open_files(window, qtbot, shared_data / "dicom" / "RG1_UNCR.dcm", shared_data / "dicom" / "RG1_J2KR.dcm")
    viewer = window.viewer
    window.show_image(0)
    scene_point = viewer.view.mapViewToScene(QtCore.QPointF(100, 100))
    viewer._mouse_moved(scene_point)
    assert "value" in window.cursor_label.text()
    window.show_image(1)
    assert window.cursor_label.text() == ""


def test_the_first_preset_names_where_the_files_window_came_from(window, qtbot, shared_data):
    """A GUI walk read "DICOM / file" for an RSNA DICOM that stores no window (the percentiles were used)."""
    viewer = window.viewer
    open_files(window, qtbot, shared_data / "dicom" / "RG1_UNCR.dcm")  # window centre / width in its header
    assert viewer.window.source == "dicom" and viewer.preset.itemText(0) == "DICOM window"
    open_files(window, qtbot, shared_data / "dicom" / "RG1_UNCR.dcm",
               shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")  # no window in its header
    window.show_image(1)
    qtbot.waitUntil(lambda: getattr(viewer.window, "source", None) == "percentile", timeout=30000)
    assert viewer.preset.itemText(0) == "File (percentiles)" and viewer.preset.currentIndex() == 0
    assert "stores no window" in viewer.preset.itemData(0, QtCore.Qt.ItemDataRole.ToolTipRole)
    # the box shows its longest names whole at 1280x800 (a GUI walk read "File (no window s", "Auto (percentiles")
    window.resize(1280, 800)
    window.show()
    box = viewer.preset
    room = box.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_ComboBox, _option(box),
                                      QtWidgets.QStyle.SubControl.SC_ComboBoxEditField, box).width()
    for name in ("Auto (percentiles)", "File (percentiles)", "Manual (dragged)"):
        assert box.fontMetrics().horizontalAdvance(name) <= room, (name, room)
