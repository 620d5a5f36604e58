"""Issue 15: the real window under a researcher's hands (offscreen, real widgets, real drop events, the
bundled model). Each test names the item it covers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from app.panels.tags_panel import KEYWORD_WIDTH
from app.window.message_bar import split_message
from medflip_core.resources import resources_dir

pytestmark = pytest.mark.slow
DEFAULT_MODEL = resources_dir() / "models" / "medflip-default"


@pytest.fixture
def ready(window, qtbot):
    qtbot.waitUntil(lambda: window.engine is not None and not window.busy(), timeout=60000)
    return window


def _open(w, qtbot, *paths, count: int | None = None) -> None:
    w.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: not w.busy() and (count is None or len(w.images) == count), timeout=30000)


def _settle(w, qtbot) -> None:
    qtbot.waitUntil(lambda: not w.busy(), timeout=30000)
    QtWidgets.QApplication.processEvents()


def test_item1_closing_mid_export_ends_with_the_model_after_restart(qtbot, trained_run, tmp_path):
    from app.window.main_window import MainWindow
    from medflip_core.bundles.model_store import user_models_dir

    first = MainWindow()
    first.training.run_dir = str(trained_run)
    first.training.export_model()
    qtbot.waitUntil(lambda: first.training.export_process.state() == QtCore.QProcess.ProcessState.Running)
    first.close()  # mid-export
    out = user_models_dir() / f"medflip-{trained_run.name}"
    qtbot.waitUntil(lambda: (out / "manifest.json").is_file(), timeout=900000)  # slow on a busy CPU
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.model_picker.findData(str(out)) >= 0
    assert again.settings.get("pending_exports") == []


def test_item2_model_option_with_a_run_folder_or_a_missing_path_is_an_error(ready, tmp_path):
    w = ready
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    w.use_model_folder(str(run))
    assert "training run, not a model" in w.messages.text()
    w.use_model_folder(str(tmp_path / "nowhere"))
    assert "does not exist" in w.messages.text() and w.messages.isVisible()
    assert w.settings.get("extra_models", []) == []
    w.use_model_folder(str(DEFAULT_MODEL))  # a real bundle folder is accepted
    assert w.settings.get("extra_models") == [str(DEFAULT_MODEL.resolve())]


def test_item3_a_new_model_from_training_is_listed_not_silently_selected(ready, qtbot):
    from medflip_core.bundles.model_store import user_models_dir

    w = ready
    before = w.model_picker.currentData()
    new = user_models_dir() / "medflip-20250101-000000"
    new.parent.mkdir(parents=True, exist_ok=True)
    new.symlink_to(DEFAULT_MODEL, target_is_directory=True)
    w.training.model_exported.emit(str(new))
    _settle(w, qtbot)
    assert w.model_picker.findData(str(new)) >= 0
    assert w.model_picker.currentData() == before and w.settings.get("model") == before


def test_item5_a_file_dropped_on_the_labels_box_opens_it(ready, qtbot, shared_data, drop):
    w = ready
    labels = w.zero_shot.labels_edit.toPlainText()
    target = w.zero_shot.labels_edit.viewport()
    drop(target, [str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 1, timeout=30000)
    assert w.zero_shot.labels_edit.toPlainText() == labels
    line = w.retrieval.query
    drop(line, [str(shared_data / "dicom" / "RG3_J2KI.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 2, timeout=30000)
    assert w.retrieval.query.text() == ""


def test_item6_a_long_label_does_not_widen_the_window(ready, qtbot, shared_data):
    w = ready
    _open(w, qtbot, shared_data / "dicom" / "RG1_UNCR.dcm", count=1)
    long_label = "pneumonia " * 30
    w.zero_shot.labels_edit.setPlainText(f"No Finding\n{long_label.strip()}")
    w.zero_shot.request()
    qtbot.waitUntil(lambda: len(w.last_scores) == 2, timeout=30000)
    _settle(w, qtbot)
    assert w.width() == 1280 and w.minimumSizeHint().width() <= 1280


def test_item7_batch_names_ood_flags_csv_and_empty_folder(ready, qtbot, shared_data, tmp_path):
    w = ready
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("rsna_cr_chest_jpeg_baseline.dcm", "highdicom_dx_animal_lateral.dcm"):
        (folder / name).symlink_to(shared_data / "dicom" / name)
    (folder / "broken.png").write_bytes(b"\x89PNG garbage")
    w.zero_shot.labels_edit.setPlainText("No Finding\nPneumonia")
    w.score_folder(str(folder))
    qtbot.waitUntil(lambda: w.batch.table.rowCount() == 3 and not w.busy(), timeout=60000)
    table = w.batch.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["File", "Top label", "No Finding", "Pneumonia", "OOD", "Error"]
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    assert set(rows) == {"rsna_cr_chest_jpeg_baseline.dcm", "highdicom_dx_animal_lateral.dcm", "broken.png"}
    dog = rows["highdicom_dx_animal_lateral.dcm"]
    tip = table.item(dog, 0).toolTip().splitlines()  # the path, then why the row is tinted
    assert tip[0] == str(folder / "highdicom_dx_animal_lateral.dcm") and "⚠ not a human" in tip[1]
    assert table.item(dog, 4).text() and "not a human" in table.item(dog, 4).toolTip()
    assert not table.item(rows["rsna_cr_chest_jpeg_baseline.dcm"], 4).text()
    # the OOD cell keeps a warning's first words (a GUI walk read "⚠ this… films"); a file name keeps its end (GUI
    # walk 44: cut in the middle, two Kermany films both read "K_NORMAL2-…-0001.jpeg")
    option = QtWidgets.QStyleOptionViewItem()
    table.itemDelegateForColumn(4).initStyleOption(option, table.model().index(dog, 4))
    assert option.textElideMode == QtCore.Qt.TextElideMode.ElideRight
    table.itemDelegateForColumn(0).initStyleOption(option, table.model().index(dog, 0))
    assert option.textElideMode == QtCore.Qt.TextElideMode.ElideLeft
    assert table.textElideMode() == QtCore.Qt.TextElideMode.ElideMiddle
    # every column of a 1280-px window is on screen: the score and error columns are not pushed off
    assert table.horizontalHeader().length() <= table.viewport().width() + 40
    w.batch.export_to(str(tmp_path / "scores"))
    assert "Saved 3 row(s)" in w.batch.status.text()
    with open(tmp_path / "scores.csv", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert [r["file"] for r in lines] == [Path(rows_path).name for rows_path in sorted(
        str(p) for p in folder.iterdir())]
    numbers = [r[k] for r in lines for k in ("No Finding", "Pneumonia") if r[k]]
    assert len(numbers) == 4 and all(len(x.split(".")[1]) == 4 and "e" not in x for x in numbers)
    assert "not a human" in next(r for r in lines if r["file"].startswith("highdicom"))["out_of_distribution"]
    empty = tmp_path / "empty"
    empty.mkdir()
    w.score_folder(str(empty))
    qtbot.waitUntil(lambda: table.rowCount() == 0 and not w.busy(), timeout=30000)
    assert "contains no images" in w.batch.status.text()


def test_item8_errors_stay_visible_with_details_and_recent_forgets_missing_paths(ready, qtbot, tmp_path):
    w = ready
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    missing = str(tmp_path / "gone.dcm")
    w.open_paths([str(tmp_path / "broken.png"), missing])
    qtbot.waitUntil(lambda: w.messages.isVisible(), timeout=30000)
    assert w.messages.text() == "2 files could not be read."
    w.statusBar().showMessage("something else happened")
    qtbot.wait(1200)
    assert w.messages.text() == "2 files could not be read."  # not replaced by a later status message
    w.messages.details_button.click()
    assert w.messages.details.isVisible() and "gone.dcm" in w.messages.details.toPlainText()
    assert missing not in [a.text() for a in w.recent_menu.actions()]
    assert split_message("x.dcm: cannot read this image (InvalidDicomError: File is missing DICOM File Meta "
                         "Information header. Use force=True to force reading.).") == (
        "x.dcm: cannot read this image.",
        "x.dcm: cannot read this image (InvalidDicomError: File is missing DICOM File Meta Information header. "
        "Use force=True to force reading.).")
    long = ("The folder study holds its films directly, e.g. 40 of them, not in one sub-folder per class; " + "x" * 150)
    assert split_message(long)[0] == ("The folder study holds its films directly, e.g. 40 of them, not in one "
                                      "sub-folder per class.")
    long = ("Bacterial vs. viral pneumonia is not a label of this model. E.g. fine-tune a classifier on your own "
            "labels; " + "x" * 150)
    assert split_message(long)[0] == "Bacterial vs. viral pneumonia is not a label of this model."  # not at "vs."
    w.messages.dismiss()
    assert not w.messages.isVisible()


def test_item9_zero_shot_input_errors_clear_bars_and_go_after_a_valid_scoring(ready, qtbot, shared_data):
    w = ready
    _open(w, qtbot, shared_data / "dicom" / "RG1_UNCR.dcm", count=1)
    zs = w.zero_shot
    zs.labels_edit.setPlainText("No Finding\nPneumonia")
    zs.request()
    qtbot.waitUntil(lambda: len(zs.bars) == 2, timeout=30000)
    for labels, templates, expected in (("", "{label}.", "at least one label"),
                                        ("Pneumonia\npneumonia", "{label}.", "listed twice"),
                                        ("No Finding\nPneumonia", "{label}.\na chest radiograph", "no {label}")):
        zs.labels_edit.setPlainText(labels)
        zs.templates_edit.setPlainText(templates)
        zs.request()
        qtbot.waitUntil(lambda expected=expected: expected in zs.status.text(), timeout=30000)
        assert zs.bars == {}
    zs.templates_edit.setPlainText("{label}.")
    zs.labels_edit.setPlainText("No Finding\nPneumonia")
    zs.request()
    qtbot.waitUntil(lambda: len(zs.bars) == 2, timeout=30000)
    assert "⚠" not in zs.status.text() and "Zero-shot probabilities" in zs.status.text()


def test_item10_heat_map_covers_the_image_only_and_has_a_colour_scale(ready, qtbot, shared_data):
    w = ready
    _open(w, qtbot, shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm", count=1)  # 211 x 169: not square
    w.zero_shot.request()
    qtbot.waitUntil(lambda: bool(w.zero_shot.bars), timeout=30000)
    w.zero_shot.heat_label.setCurrentIndex(1)
    qtbot.waitUntil(lambda: w.viewer.overlay_item.isVisible() and w.viewer.overlay_scale.isVisible(), timeout=30000)
    item = w.viewer.overlay_item
    rect = item.mapRectToParent(item.boundingRect())
    assert (rect.left(), rect.top(), rect.width(), rect.height()) == pytest.approx((0, 0, 211, 169), abs=0.01)
    low, high = float(w.viewer.overlay_scale.low.text()), float(w.viewer.overlay_scale.high.text())
    assert -1 <= low < high <= 1 and "lowest and highest patch" in w.viewer.overlay_scale.toolTip()
    w.zero_shot.heat_label.setCurrentIndex(0)
    assert not w.viewer.overlay_item.isVisible() and not w.viewer.overlay_scale.isVisible()


def test_item11_retrieval_is_filled_when_a_file_opens_while_the_model_loads(window, qtbot, shared_data):
    assert window.engine is None  # the model is still loading
    window.open_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")])
    qtbot.waitUntil(lambda: window.retrieval.sentences.count() == window.retrieval.k.value(), timeout=60000)


def test_item12_layout_at_1280_by_800(ready, qtbot, shared_data, drop):
    w = ready
    bar = w.tabs.tabBar()
    for i in range(w.tabs.count()):  # every tab on screen with its whole name, no scroll arrows
        rect = bar.tabRect(i)
        assert rect.right() <= bar.width() and rect.width() > bar.fontMetrics().horizontalAdvance(bar.tabText(i))
    assert w.viewer.placeholder.isVisible()
    hint = w.viewer.placeholder
    assert hint.heightForWidth(hint.width()) <= hint.height()  # the empty-viewer hint is not clipped
    picker = w.model_picker
    assert picker.width() >= picker.fontMetrics().horizontalAdvance(picker.currentText()) + 20
    dicom = shared_data / "dicom" / "RG1_UNCR.dcm"
    _open(w, qtbot, dicom, count=1)
    target = w.browser.viewport()
    drop(target, [str(dicom)])
    _settle(w, qtbot)
    assert len(w.images) == 1 and w.browser.topLevelItem(0).childCount() == 1  # dropped twice, listed once
    row = w.browser.topLevelItem(0).child(0)
    assert row.text(1) == "(hidden)"
    w.tags.reveal.setChecked(True)
    assert row.text(1) not in ("", "(hidden)")  # the browser reveals with the Tags switch
    tree = w.tags.tree  # a keyword wider than its column (the values have the room: GUI walk 43) is elided in
    items = [tree.topLevelItem(r) for r in range(tree.topLevelItemCount())]  # its cell, whole in its tooltip
    for item in items:
        assert item.toolTip(1) == item.text(1)
    assert tree.columnWidth(1) >= min(KEYWORD_WIDTH, max(tree.fontMetrics().horizontalAdvance(item.text(1))
                                                         for item in items))
