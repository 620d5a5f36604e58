"""Issue 23 item 6 (out-of-distribution warnings wherever the model speaks) and item 8's batch CSV, in the real
window with the bundled model on real films: the Retrieval tab warns for a leg film, a text search lists the
leg and the dog after the chests and marks them, and the batch CSV is the table as sorted, 0644 under umask
022, names its model, label mode and prompts, and its Save dialog opens where the scores belong."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from app.panels.retrieval_panel import OOD_HEADING

pytestmark = pytest.mark.slow
LEG, DOG = "RG3_J2KI.dcm", "highdicom_dx_animal_lateral.dcm"
CHESTS = ("RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm")


@pytest.fixture
def ready(window, qtbot):
    qtbot.waitUntil(lambda: window.engine is not None and not window.busy(), timeout=60000)
    return window


def _open(w, qtbot, paths: list[Path]) -> None:
    w.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: not w.busy() and len(w.images) == len(paths), timeout=60000)


def test_retrieval_of_a_leg_film_shows_the_warning_and_a_chest_does_not(ready, qtbot, shared_data):
    w = ready
    _open(w, qtbot, [shared_data / "dicom" / LEG, shared_data / "dicom" / CHESTS[1]])
    w.browser.select_index(0)
    w.tabs.setCurrentWidget(w.retrieval)
    panel = w.retrieval
    qtbot.waitUntil(lambda: panel.sentences.count() == panel.k.value() and not panel.sentences_warning.isHidden()
                    and not w.busy(), timeout=30000)
    assert panel.sentences_warning.isVisible()
    text = panel.sentences_warning.text()
    assert "Out of the model's distribution" in text and "EXTREMITY is not a chest" in text
    assert "not a reading of this image" in text
    w.browser.select_index(1)  # the adult chest: the warning goes
    qtbot.waitUntil(lambda: panel.sentences_warning.isHidden() and not w.busy(), timeout=30000)
    assert panel.sentences.count() == panel.k.value()


def test_text_search_lists_ood_films_after_the_chests_marked_with_their_reason(ready, qtbot, shared_data):
    w = ready
    _open(w, qtbot, [shared_data / "dicom" / n for n in (LEG, DOG, *CHESTS)])
    w.tabs.setCurrentWidget(w.retrieval)
    panel = w.retrieval
    panel.query.setText("pleural effusion")
    QTest.keyClick(panel.query, QtCore.Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.ranked.count() == 5 and not w.busy(), timeout=30000)
    texts = [panel.ranked.item(r).text() for r in range(5)]
    names = [w.images[i].path.name for i in panel.ranked_images()]
    assert set(names[:2]) == set(CHESTS) and set(names[2:]) == {LEG, DOG}
    assert texts[2] == OOD_HEADING and not panel.ranked.item(2).flags() & QtCore.Qt.ItemFlag.ItemIsSelectable
    assert not any("⚠" in t for t in texts[:2])
    leg = next(r for r in (3, 4) if LEG in texts[r])
    assert texts[leg].startswith("⚠ [") and "EXTREMITY is not a chest" in texts[leg]
    assert "the model has only seen chest radiographs" in panel.ranked.item(leg).toolTip()
    dog = 7 - leg
    assert "not a human patient" in texts[dog] and "lateral view" in texts[dog]
    # an OOD hit still opens its film; the heading opens nothing
    panel.ranked.itemClicked.emit(panel.ranked.item(leg))
    qtbot.waitUntil(lambda: w.current is not None and w.images[w.current].path.name == LEG, timeout=10000)
    panel.ranked.itemClicked.emit(panel.ranked.item(2))
    assert w.images[w.current].path.name == LEG


def _click_header(table: QtWidgets.QTableWidget, column: int) -> None:
    header = table.horizontalHeader()
    pos = QtCore.QPoint(header.sectionViewportPosition(column) + header.sectionSize(column) // 2,
                        header.height() // 2)
    QTest.mouseClick(header.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, pos)


def _dialog_start(w, qtbot) -> str:
    """Click Export CSV…, read the real Save dialog's proposed file, cancel it."""
    seen: dict[str, str] = {}

    def inspect() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(dialog, QtWidgets.QFileDialog):
            QtCore.QTimer.singleShot(50, inspect)
            return
        seen["file"] = str(Path(dialog.directory().absolutePath()) / dialog.selectedFiles()[0].rsplit("/", 1)[-1])
        dialog.reject()

    QtCore.QTimer.singleShot(50, inspect)
    w.batch.export.click()
    qtbot.waitUntil(lambda: "file" in seen, timeout=10000)
    return seen["file"]


def test_batch_csv_is_the_sorted_table_0644_names_its_run_and_saves_where_it_belongs(ready, qtbot, shared_data,
                                                                                      tmp_path):
    w = ready
    folder = tmp_path / "study"
    folder.mkdir()
    for name in (LEG, DOG, *CHESTS):
        (folder / name).symlink_to(shared_data / "dicom" / name)
    w.zero_shot.labels_edit.setPlainText("No Finding\nPneumonia")
    w.tabs.setCurrentWidget(w.batch)
    w.score_folder(str(folder))
    table = w.batch.table
    qtbot.waitUntil(lambda: table.rowCount() == 4 and not w.busy(), timeout=60000)
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    pneumonia, ood = headers.index("Pneumonia"), headers.index("OOD")
    # the warning column names the reason, the tooltip has the sentences
    rows = {table.item(r, 0).text(): r for r in range(4)}
    assert "EXTREMITY is not a chest" in table.item(rows[LEG], ood).text()
    assert "not a human patient" in table.item(rows[DOG], ood).toolTip()
    assert all(not table.item(rows[n], ood).text() for n in CHESTS)
    assert "medflip-default" in w.batch.status.text() and "one class per image" in w.batch.status.text()
    _click_header(table, pneumonia)
    _click_header(table, pneumonia)
    shown = [table.item(r, 0).text() for r in range(4)]
    values = [float(table.item(r, pneumonia).text()) for r in range(4)]
    assert values == sorted(values, reverse=True) or values == sorted(values)
    assert shown != sorted(shown)  # the check below would also pass in file order otherwise
    # the Save dialog opens in the scored folder, named after it
    assert _dialog_start(w, qtbot) == str(folder / "study_scores.csv")
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    legend = w.batch.status.text()
    old = os.umask(0o022)
    try:
        w.batch.export_to(str(out_dir / "scores"))
    finally:
        os.umask(old)
    assert "Saved 4 row(s)" in w.batch.status.text()
    assert w.batch.status.text().startswith(legend)  # what the marks mean stays (a GUI walk: it was replaced)
    w.batch.export_to(str(out_dir / "again"))
    assert w.batch.status.text().count("Saved") == 1
    written = out_dir / "scores.csv"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    with open(written, newline="") as fh:
        header = next(csv.reader(fh))
        fh.seek(0)
        lines = list(csv.DictReader(fh))
    assert [r["file"] for r in lines] == shown
    assert "model" in header and {r["model"] for r in lines} == {"medflip-default"}
    assert all(r["label_mode"].startswith("one class per image (automatic") for r in lines)
    chosen = w.engine.bundle.manifest["zero_shot_prompts"]["name"]  # the prompts chosen on validation, shipped
    assert all(chosen in r["prompts"] for r in lines)
    assert "EXTREMITY" in next(r for r in lines if r["file"] == LEG)["out_of_distribution"]
    # next time the dialog opens in the folder saved to last, kept in the settings across windows
    assert _dialog_start(w, qtbot) == str(out_dir / "study_scores.csv")
    from app.settings import Settings

    assert Settings().get("batch_csv_dir") == str(out_dir)


def test_batch_scores_with_the_templates_typed_in_the_zero_shot_tab(ready, qtbot, shared_data, tmp_path):
    """The batch gives each film what the Zero-shot tab gives it, typed templates included, and its CSV says so."""
    w = ready
    film = shared_data / "dicom" / CHESTS[0]
    _open(w, qtbot, [film])
    w.zero_shot.labels_edit.setPlainText("No Finding\nPneumonia\nPleural Effusion")
    w.zero_shot.templates_edit.setPlainText("an x-ray showing {label}.")
    w.zero_shot.request()
    qtbot.waitUntil(lambda: set(w.last_scores) == {"No Finding", "Pneumonia", "Pleural Effusion"}, timeout=30000)
    tab = dict(w.last_scores)
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / film.name).symlink_to(film)
    w.score_folder(str(folder))
    qtbot.waitUntil(lambda: w.batch.table.rowCount() == 1 and not w.busy(), timeout=60000)
    assert w.batch.run.prompts.startswith("templates typed by the user")
    assert w.batch.run.templates == ("an x-ray showing {label}.",)
    row = w.batch.rows_on_screen()[0]
    assert row["scores"] == pytest.approx(tab, abs=1e-5)
    w.zero_shot.templates_edit.setPlainText("")  # the model's own prompts again: different scores, named so
    w.score_folder(str(folder))
    # (while the folder scores, the previous run and rows are gone: issue 31 item 9)
    qtbot.waitUntil(lambda: w.batch.run is not None and w.batch.run.templates != ("an x-ray showing {label}.",)
                    and not w.busy(), timeout=60000)
    assert "prompt set" in w.batch.run.prompts
    assert w.batch.rows_on_screen()[0]["scores"] != pytest.approx(tab, abs=1e-5)


def test_batch_marks_columns_of_labels_outside_the_label_space(ready, qtbot, shared_data, tmp_path):
    """A GUI walk: a typed label the model does not know ("COVID-19") was marked beside its Zero-shot bar but came
    out of the batch as one more probability column. Its header now carries the mark and the tooltip, the status
    says it, and the CSV names it."""
    w = ready
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / CHESTS[0]).symlink_to(shared_data / "dicom" / CHESTS[0])
    w.zero_shot.labels_edit.setPlainText("Pneumonia\nCOVID-19\nEdema")
    w.score_folder(str(folder))
    qtbot.waitUntil(lambda: w.batch.table.rowCount() == 1 and not w.busy(), timeout=60000)
    headers = [w.batch.table.horizontalHeaderItem(c) for c in range(w.batch.table.columnCount())]
    # Edema: never validated; ∥: the score says how abnormal the film looks (COVID-19 and Pneumonia for v4)
    assert [h.text() for h in headers[2:5]] == ["Pneumonia ∥", "COVID-19 † ∥", "Edema *"]
    assert "no held-out figure" in headers[4].toolTip()
    assert "how abnormal the model finds the film" in headers[3].toolTip()
    assert ("* no validation figure backs it · ∥ its score follows how abnormal the film looks, not a finding "
            "(hover a column for why)") in w.batch.status.text()
    assert "decision rule was not fitted" in headers[3].toolTip() and "fitted" not in headers[2].toolTip()
    assert "† “COVID-19” is not one of the model's labels" in w.batch.status.text()
    out = w.batch.write_csv(str(tmp_path / "scores.csv"))
    with open(out, newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["uncalibrated_labels"] == "COVID-19" and float(row["COVID-19"]) >= 0  # the column keeps its name
    assert row["unvalidated_labels"] == "Edema" and row["abnormality_like_labels"] == "Pneumonia | COVID-19"


def test_a_double_clicked_batch_row_opens_its_film(ready, qtbot, shared_data, tmp_path):
    """A GUI walk: double-clicking a row did nothing, and a surprising score's film had to be found by hand."""
    w = ready
    folder = tmp_path / "two"
    folder.mkdir()
    for name in CHESTS:
        (folder / name).symlink_to(shared_data / "dicom" / name)
    w.score_folder(str(folder))
    qtbot.waitUntil(lambda: w.batch.table.rowCount() == 2 and not w.busy(), timeout=60000)
    w.tabs.setCurrentWidget(w.batch)
    row = next(r for r in range(2) if w.batch.table.item(r, 0).text() == CHESTS[1])
    cell = w.batch.table.visualItemRect(w.batch.table.item(row, 0)).center()
    QTest.mouseClick(w.batch.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=cell)  # a view needs the press
    QTest.mouseDClick(w.batch.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=cell)
    qtbot.waitUntil(lambda: w.viewer.radiograph is not None and w.viewer.radiograph.path.name == CHESTS[1],
                    timeout=60000)
    # open already: selected again, not read a second time nor added to Recent (a review)
    opened, recent = len(w.images), list(w.settings.get("recent", []))
    w.open_paths([str(shared_data / "dicom" / CHESTS[0])])
    qtbot.waitUntil(lambda: len(w.images) == opened + 1 and not w.busy(), timeout=60000)
    recent = list(w.settings.get("recent", []))
    QTest.mouseClick(w.batch.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=cell)
    QTest.mouseDClick(w.batch.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=cell)
    qtbot.waitUntil(lambda: w.viewer.radiograph.path.name == CHESTS[1], timeout=60000)
    assert len(w.images) == opened + 1 and list(w.settings.get("recent", [])) == recent
