"""The Zero-shot tab's choice of how labels become probabilities (issue 23 item 4), driven in the real window
with the bundled model on a real DICOM: one label is never 100 % by construction, the mode is visible and
switchable, the user's choice sticks until Automatic, and No Finding beside findings says when both cannot hold."""

from __future__ import annotations

import pytest
from PySide6 import QtCore

from medflip_core.inference.zeroshot import AUTOMATIC, EXCLUSIVE, INDEPENDENT


def _score(window, qtbot, labels: str) -> None:
    panel = window.zero_shot
    panel.labels_edit.setPlainText(labels)
    window.last_scores = {}
    qtbot.mouseClick(panel.score_button, QtCore.Qt.MouseButton.LeftButton)
    wanted = {x for x in labels.splitlines() if x}
    qtbot.waitUntil(lambda: set(window.last_scores) == wanted and set(panel.bars) == wanted, timeout=30000)


def _choose(panel, mode: str) -> None:
    """Pick an entry of the Probabilities box as a user does (the box's own signal, not a setter)."""
    panel.label_mode_box.setCurrentIndex(panel.label_mode_box.findData(mode))


def test_one_label_is_not_100_percent_and_the_mode_is_a_visible_sticky_choice(window, qtbot, shared_data):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: window.current is not None, timeout=30000)
    panel = window.zero_shot
    assert panel.label_mode() == AUTOMATIC and panel.label_mode_box.isVisible()

    # one label: scored against "no pneumothorax", not a softmax over itself (it was 100.0 %)
    _score(window, qtbot, "pneumothorax")
    assert 0.0 < window.last_scores["pneumothorax"] < 0.99
    assert panel.bars["pneumothorax"].value() < 990
    assert panel.label_mode_box.currentText() == "Automatic (findings, each present vs absent)"
    assert "no pneumothorax" in panel.mode_note.text()
    assert "findings, each present vs absent (automatic)" in panel.status.text()

    # one class per image with one label: refused in words, the old bars go, nothing reads 100 %
    _choose(panel, EXCLUSIVE)
    assert "100 % by construction" in panel.mode_note.text()
    qtbot.waitUntil(lambda: "100 % by construction" in panel.status.text(), timeout=30000)
    assert not panel.bars
    assert "no pneumothorax" in panel.status.text() and "no pneumothorax" not in panel.mode_note.text()  # said once

    # another choice redoes what is on screen (here the refusal) without a click
    window.last_scores = {}
    _choose(panel, INDEPENDENT)
    qtbot.waitUntil(lambda: set(panel.bars) == {"pneumothorax"}, timeout=30000)
    assert "findings, each present vs absent (your choice)" in panel.status.text()
    _choose(panel, EXCLUSIVE)
    qtbot.waitUntil(lambda: not panel.bars, timeout=30000)

    # the choice sticks while labels change: four findings, one class per image, summing to 100 %
    _score(window, qtbot, "Pneumothorax\nPneumonia\nPleural Effusion\nCardiomegaly")
    assert panel.label_mode() == EXCLUSIVE
    assert sum(window.last_scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert "one class per image (your choice)" in panel.status.text()
    assert "Automatic would choose findings, each present vs absent" in panel.mode_note.text()
    exclusive = dict(window.last_scores)

    # back to Automatic: the bars on screen are redone, each finding on its own
    window.last_scores = {}
    _choose(panel, AUTOMATIC)
    qtbot.waitUntil(lambda: bool(window.last_scores), timeout=30000)
    assert sum(window.last_scores.values()) != pytest.approx(1.0, abs=1e-2)
    assert window.last_scores["Pneumonia"] != pytest.approx(exclusive["Pneumonia"], abs=1e-3)
    assert "findings, each present vs absent (automatic)" in panel.status.text()

    # a model chosen again (set_classifier, default labels) leaves an explicit choice as it is
    _choose(panel, INDEPENDENT)
    panel.set_classifier("")
    assert panel.label_mode() == INDEPENDENT


def test_no_finding_beside_findings_is_flagged_when_they_cannot_both_hold(window, qtbot, shared_data):
    """The issue's film: the default labels gave No Finding 52.8 % and Pneumonia 61.3 % side by side, unexplained."""
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: window.current is not None, timeout=30000)
    _score(window, qtbot, "\n".join(window.engine.bundle.default_labels))
    scores = window.last_scores
    assert scores["No Finding"] + scores["Pneumonia"] > 1.0
    said = f"No Finding {scores['No Finding'] * 100:.1f} % contradicts Pneumonia {scores['Pneumonia'] * 100:.1f} %"
    assert any(line.startswith(f"⚠ {said}") for line in window.zero_shot.warnings.texts())  # an image warning line
    _choose(window.zero_shot, EXCLUSIVE)  # one class per image: they share 100 %, nothing to contradict
    qtbot.waitUntil(lambda: "one class per image (your choice)" in window.zero_shot.status.text(), timeout=30000)
    assert "contradicts" not in window.zero_shot.status.text() + " ".join(window.zero_shot.warnings.texts())
    assert sum(window.last_scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_comma_separated_labels_are_several_labels_and_the_warning_precedes_the_bars(window, qtbot, shared_data):
    """A GUI walk typed "Pleural Effusion, Cardiomegaly, Nodule" and got one bar for the whole line; and the
    warning about the image sat under the bars, below the fold at 1280x800."""
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: window.current is not None, timeout=30000)
    panel = window.zero_shot
    panel.labels_edit.setPlainText("Pleural Effusion, Cardiomegaly,\nNodule")
    assert panel.labels() == ["Pleural Effusion", "Cardiomegaly", "Nodule"]
    window.last_scores = {}
    qtbot.mouseClick(panel.score_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: set(panel.bars) == {"Pleural Effusion", "Cardiomegaly", "Nodule"}, timeout=30000)
    layout = panel.status.parentWidget().layout()
    assert layout.indexOf(panel.score_button) < layout.indexOf(panel.status) < layout.indexOf(panel.results)


def test_the_chosen_mode_is_kept_across_restarts(qtbot):
    """The settings file (a temporary config folder here) carries the choice to the next window."""
    from app.window.main_window import MainWindow

    first = MainWindow()
    qtbot.addWidget(first)
    assert first.zero_shot.label_mode() == AUTOMATIC
    _choose(first.zero_shot, EXCLUSIVE)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.zero_shot.label_mode() == EXCLUSIVE
    _choose(second.zero_shot, AUTOMATIC)
    second.close()
    third = MainWindow()
    qtbot.addWidget(third)
    assert third.zero_shot.label_mode() == AUTOMATIC
    third.close()


def test_a_label_outside_the_models_labels_is_marked_beside_its_bar(window, qtbot, shared_data):
    """A GUI walk typed COVID-19 and "banana" and got bars that looked like the model's own findings (COVID-19
    58.4 % on an NIH No Finding film). Such a label is marked, and the status says why."""
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: window.current is not None, timeout=30000)
    _score(window, qtbot, "Pneumonia\nPleural Effusion\nCOVID-19\nbanana")
    panel = window.zero_shot
    names = {}
    for row in range(panel.results_layout.rowCount()):
        label = panel.results_layout.itemAt(row, panel.results_layout.ItemRole.LabelRole).widget()
        names[label.text().removesuffix(" ∥").removesuffix(" †").removesuffix(" *")] = label
    assert set(names) == {"Pneumonia", "Pleural Effusion", "COVID-19", "banana"}
    marked = {n for n, w in names.items() if "†" in w.text()}
    assert marked == {"COVID-19", "banana"} and not any("⚠" in w.text() for w in names.values())  # ⚠: the image
    # a label of the model's own that its validation never measured (a later walk: it looked validated)
    assert {n for n, w in names.items() if " *" in w.text()} == {"Pleural Effusion"}
    # scores that rank films as the model's abnormality does (label_specificity): even "banana"
    alike = {n for n, w in names.items() if w.text().endswith(" ∥")}
    assert alike == {"Pneumonia", "COVID-19", "banana"}
    assert "how abnormal the model finds the film" in names["banana"].toolTip()
    # a label outside the model's labels says it is a score (in per cent, as every bar: a walk saw "score 0.20" among
    # percentages), and comes after the model's own labels
    order = [panel.results_layout.itemAt(r, panel.results_layout.ItemRole.LabelRole).widget() for r in
             range(panel.results_layout.rowCount())]
    assert {names[n] for n in ("COVID-19", "banana")} == set(order[2:])
    assert panel.bars["COVID-19"].format().startswith("score ") and panel.bars["COVID-19"].format().endswith(" %")
    assert not panel.bars["Pneumonia"].format().startswith("score") and panel.bars["Pneumonia"].format().endswith(" %")
    # one legend line for the marks in use, the reasons in each name's tooltip
    assert "* no validation figure backs it · ∥ its score follows how abnormal the film looks" in panel.status.text()
    assert names["Pleural Effusion"].toolTip().startswith("<qt>Pleural Effusion<br>* not validated")  # wraps
    assert "decision rule was not fitted on it" in names["banana"].toolTip()
    assert "† “COVID-19”, “banana” are not among the model's labels" in panel.status.text()
    assert panel.status.text().count("<br>") <= 3  # what the bars are, the outside labels, the legend, research use
    _score(window, qtbot, "Pneumonia\nPleural Effusion")  # the model's own labels: no mark, no sentence
    assert "not among the model's labels" not in panel.status.text()
    assert "not one of the model's labels" not in panel.status.text()


def test_another_image_takes_the_previous_ones_bars_away_at_once(window, qtbot, shared_data):
    """A GUI walk saw an NIH film's Pneumonia 94.9 % beside the next film for seconds while it was read and
    scored. The bars go when the image changes, the status says what is coming, and the new image's bars follow."""
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    films = [shared_data / "dicom" / n for n in ("RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm")]
    window.open_paths([str(f) for f in films])
    qtbot.waitUntil(lambda: len(window.images) == 2 and not window.busy(), timeout=60000)
    window.browser.select_index(0)
    _score(window, qtbot, "No Finding\nPneumonia")
    panel = window.zero_shot
    window.browser.select_index(1)
    assert panel.bars == {} and panel.status.text() == f"Scoring {films[1].name}…"
    qtbot.waitUntil(lambda: set(panel.bars) == {"No Finding", "Pneumonia"}, timeout=30000)
    assert window.viewer.radiograph.path.name == films[1].name


def test_the_models_labels_come_back_with_one_click(window, qtbot):
    """A GUI walk: typed labels ("Pneumonia, COVID-19") stuck across restarts with no way back to the model's."""
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    panel = window.zero_shot
    panel.labels_edit.setPlainText("Pneumonia, COVID-19")
    assert panel.model_labels_button.isEnabled()
    qtbot.mouseClick(panel.model_labels_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.labels() == window.engine.bundle.default_labels
