"""Issue 31 item 9, the smaller items: a new batch clears the old rows, one View entry per action with PgUp
working, Open recent can be cleared, the About box names NIH ChestX-ray14, and `medflip classify` warns that No
Finding contradicts a finding as the Zero-shot tab does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtGui

REPO = Path(__file__).resolve().parents[3]


def test_a_new_batch_clears_the_previous_folders_rows_and_export(window, qtbot, shared_data, tmp_path):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    first = tmp_path / "first"
    first.mkdir()
    for name in ("RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm"):
        (first / name).symlink_to(shared_data / "dicom" / name)
    window.tabs.setCurrentWidget(window.batch)
    window.score_folder(str(first))
    qtbot.waitUntil(lambda: len(window.batch.rows) == 2, timeout=120000)
    assert window.batch.export.isEnabled()
    second = tmp_path / "second"
    second.mkdir()
    (second / "RG1_UNCR.dcm").symlink_to(shared_data / "dicom" / "RG1_UNCR.dcm")
    window.score_folder(str(second))
    # while the new folder scores, nothing of the old one can be exported as if it were this one's
    assert window.batch.table.rowCount() == 0 and not window.batch.rows and not window.batch.export.isEnabled()
    qtbot.waitUntil(lambda: len(window.batch.rows) == 1, timeout=120000)
    assert window.batch.export.isEnabled()


def test_view_menu_lists_each_action_once_and_page_up_goes_back(window):
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    texts = [a.text() for a in view.actions() if a.text()]
    assert len(texts) == len(set(texts)), texts
    previous = next(a for a in view.actions() if a.text() == "Previous image")
    assert QtGui.QKeySequence("PgUp") in previous.shortcuts() and QtGui.QKeySequence("Up") in previous.shortcuts()
    following = next(a for a in view.actions() if a.text() == "Next image")
    assert QtGui.QKeySequence("PgDown") in following.shortcuts()


def test_open_recent_can_be_cleared(window, shared_data):
    window.settings.add_recent(str(shared_data / "dicom" / "RG1_UNCR.dcm"))
    window._fill_recent()
    clear = next(a for a in window.recent_menu.actions() if a.text() == "Clear recent")
    assert clear.isEnabled()
    clear.trigger()
    assert window.settings.get("recent") == []
    assert [a.text() for a in window.recent_menu.actions() if a.text()] == ["Clear recent"]


def test_the_about_box_names_every_data_set_behind_the_model():
    from app.window.about import ABOUT_HTML

    assert "NIH ChestX-ray14" in ABOUT_HTML and "Kermany" in ABOUT_HTML and "Indiana" in ABOUT_HTML


@pytest.mark.slow
def test_classify_warns_that_no_finding_contradicts_a_finding(shared_data):
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "classify",
                           str(shared_data / "dicom" / "RG1_UNCR.dcm")], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: No Finding" in proc.stdout and "contradicts Pneumonia" in proc.stdout, proc.stdout


def test_edited_labels_drop_the_old_bars_and_the_classifier_explanation_leaves_with_its_mode(window, qtbot,
                                                                                             shared_data):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    zs = window.zero_shot
    qtbot.waitUntil(lambda: bool(zs.bars), timeout=60000)
    zs.labels_edit.setPlainText("No Finding\nCardiomegaly")
    assert not zs.bars and "labels changed" in zs.status.text()  # no bar of a label that is gone
    zs.score_button.click()
    qtbot.waitUntil(lambda: set(zs.bars) == {"No Finding", "Cardiomegaly"}, timeout=60000)
    zs.set_classifier("some-classifier")  # a classifier's mode, then back to labels: no stale explanation
    zs.status.setText("Classifier some-classifier: calibrated probabilities …")
    zs.use_zero_shot.setChecked(True)
    assert "Classifier" not in zs.status.text()


def test_loading_a_folder_never_shows_a_count_it_has_not_made(window, qtbot, shared_data, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    films = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:150]
    for f in films:
        (folder / f.name).symlink_to(f)
    counts = []
    window.load_progress.valueChanged.connect(lambda _: counts.append(window.load_progress.maximum()))
    window.open_paths([str(folder)])
    assert window.load_progress.maximum() == 0  # busy, not "0 of 100", until the files are counted
    qtbot.waitUntil(lambda: window.last_load is not None, timeout=120000)
    assert set(counts) <= {0, 150}, set(counts)  # every count shown is of this folder's 150 files


def test_a_model_that_finishes_loading_leaves_a_fresh_error_on_the_status_bar(window, qtbot, shared_data, tmp_path):
    """A corrupt file's error, shown while the model loads, is not pushed off the status bar by "Model … ready"
    (the race that failed test_corrupt_file_shows_an_error_and_the_app_keeps_working in a fresh-clone run)."""
    qtbot.waitUntil(lambda: window.engine is not None and not window.busy(), timeout=60000)
    old = window.engine
    bad = tmp_path / "corrupt.dcm"
    bad.write_bytes(b"DICM" * 50)
    window._load_model(str(old.bundle.path))  # the model loads again, in the background
    window.open_paths([str(bad)])
    qtbot.waitUntil(lambda: "corrupt.dcm" in window.last_error, timeout=20000)
    qtbot.waitUntil(lambda: window.engine is not old and window.engine is not None, timeout=60000)
    assert "corrupt.dcm" in window.statusBar().currentMessage()
    assert window.device_label.text().strip().startswith("Inference:")  # where the device is said meanwhile


def test_tabs_switch_from_anywhere_keys_are_listed_and_a_model_folder_opens_from_the_menu(window, qtbot, monkeypatch,
                                                                                         tiny_bundle):
    """A GUI walk: Ctrl+Tab switched tabs only with the focus in the right panel, Help listed no keys, a bundle a
    colleague sent could be used only with --model, and the first Open dialog opened in the app's own folder."""
    from pathlib import Path

    from PySide6 import QtCore, QtWidgets
    from PySide6.QtTest import QTest

    window.viewer.setFocus()
    start = window.tabs.currentIndex()
    QTest.keyClick(window.viewer, QtCore.Qt.Key.Key_Tab, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == (start + 1) % window.tabs.count()
    QTest.keyClick(window.viewer, QtCore.Qt.Key.Key_PageUp, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == start
    window.tabs.setCurrentWidget(window.zero_shot)  # inside the panel: one step, not two
    window.zero_shot.labels_edit.setFocus()
    QTest.keyClick(window.zero_shot.labels_edit, QtCore.Qt.Key.Key_Tab, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == window.tabs.indexOf(window.zero_shot) + 1
    # with the focus inside the Training tab's curves / classifier results, those switch, as in any Qt tab widget
    window.tabs.setCurrentWidget(window.training)
    views = window.training.views
    views.setCurrentIndex(0)
    window.training.log.setFocus()  # beside the inner tabs, not in them: the window's tabs switch
    QTest.keyClick(window.training.log, QtCore.Qt.Key.Key_Tab, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == (window.tabs.indexOf(window.training) + 1) % window.tabs.count()
    window.tabs.setCurrentWidget(window.training)
    bar = views.tabBar()  # a click on the "Training curves" label, as a user does (a GUI walk: no focus came)
    QTest.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.tabRect(0).center())
    assert bar.hasFocus()
    QTest.keyClick(views.tabBar(), QtCore.Qt.Key.Key_Tab, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert views.currentIndex() == 1 and window.tabs.currentWidget() is window.training
    QTest.keyClick(views.tabBar(), QtCore.Qt.Key.Key_PageDown, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert views.currentIndex() == 0 and window.tabs.currentWidget() is window.training
    window.tabs.setCurrentIndex(start)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    keys = next(a for a in help_menu.actions() if a.text() == "&Keyboard and mouse")
    keys.trigger()
    shown = [b for b in window.findChildren(QtWidgets.QMessageBox) if b.windowTitle() == "Keyboard and mouse"]
    assert shown and "Right-drag: window/level" in shown[0].text() and "S skip" in shown[0].text()
    asked = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        lambda parent, title, start: asked.append(start) or str(tiny_bundle))
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    next(a for a in file_menu.actions() if a.text() == "Open &model folder…").trigger()
    assert asked[0] and Path(asked[0]).is_dir()  # never "" (Qt then opens the app's working folder)
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.name == "tiny-test", timeout=60000)


def test_the_model_card_opens_wide_enough_for_its_tables(window, qtbot):
    """A GUI walk: the card's 12-column ablation table was packed into a 700 px dialog."""
    from PySide6 import QtWidgets

    window.resize(1400, 860)
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.show_model_card()
    box = next(d for d in window.findChildren(QtWidgets.QDialog) if d.windowTitle().startswith("Model card"))
    assert box.width() >= int(1400 * 0.85) - 1 and "Research use only" in box.findChild(
        QtWidgets.QTextBrowser).toPlainText()
    close = box.findChild(QtWidgets.QDialogButtonBox).button(QtWidgets.QDialogButtonBox.StandardButton.Close)
    close.click()  # a later walk: the dialog had no Close button
    assert not box.isVisible()
