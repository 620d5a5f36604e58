"""A GUI walk: at 1280x800 the Zero-shot tab's words pushed the bars below the fold (six grey lines, the prompt
templates open). The templates fold away and say which prompts apply, a template of the user's own opens them, and
with the model's eight labels every bar and the heat-map choice are on screen without scrolling. Real film, the
bundled model, offscreen."""

from __future__ import annotations

from PySide6 import QtCore


def _on_screen(panel, widget) -> bool:
    """The widget lies inside the part of the panel's scrolling page that is shown."""
    port = panel.page.viewport()
    top_left = widget.mapTo(port, QtCore.QPoint(0, 0))
    return top_left.y() >= 0 and top_left.y() + widget.height() <= port.height()


def test_every_bar_of_the_models_labels_fits_at_1280x800_and_the_templates_fold(window, qtbot, shared_data):
    w, panel = window, window.zero_shot
    assert (w.width(), w.height()) == (1280, 800)
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    assert not panel.templates_box.isVisible() and panel.templates_summary.text() == "the model's own prompts"
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: len(panel.bars) == len(w.engine.bundle.default_labels) and not w.busy(), timeout=60000)
    assert len(panel.bars) == 8
    assert all(_on_screen(panel, bar) for bar in panel.bars.values())
    assert _on_screen(panel, panel.heat_label)
    # the user's own template: the section opens (what scores the bars is never hidden) and says so
    panel.templates_edit.setPlainText("an x-ray with {label}.")
    assert panel.templates_toggle.isChecked() and panel.templates_box.isVisible()
    assert panel.templates_summary.text() == "your own (1), used as typed"
    panel.templates_toggle.click()
    assert not panel.templates_box.isVisible()


def test_the_score_button_stays_put_as_labels_are_typed(window, qtbot):
    """A GUI walk: the mode note under the labels went from two lines to one as labels changed, and the Score image
    button moved 14 px under the click."""
    panel = window.zero_shot
    panel.labels_edit.setPlainText("No Finding\nPneumonia\nPleural Effusion\nCardiomegaly")  # a two-line note
    qtbot.wait(50)
    before = panel.score_button.mapTo(panel, panel.score_button.rect().topLeft()).y()
    panel.labels_edit.setPlainText("No Finding\nPneumonia")  # a one-line note
    qtbot.wait(50)
    assert panel.score_button.mapTo(panel, panel.score_button.rect().topLeft()).y() == before


def test_templates_of_ones_own_are_said_and_old_bars_go_and_the_outside_mark_is_explained_once(window, qtbot,
                                                                                                 shared_data):
    """A GUI walk: with a template of one's own the ∥ marks vanished and the status read "fitted on default (not
    chosen on data)"; editing the templates left the old bars up; † was explained twice."""
    w, panel = window, window.zero_shot
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: bool(panel.bars) and not w.busy(), timeout=60000)
    panel.labels_edit.setPlainText("Pneumonia\nCOVID-19")
    panel.request()
    qtbot.waitUntil(lambda: set(panel.bars) == {"Pneumonia", "COVID-19"} and not w.busy(), timeout=60000)
    assert panel.status.text().count("†") == 1  # the line about the label outside the model's labels, once
    panel.templates_edit.setPlainText("an x-ray with {label}.")
    assert not panel.bars and "prompt templates changed" in panel.status.text()
    panel.request()
    qtbot.waitUntil(lambda: len(panel.bars) == 2 and not w.busy(), timeout=60000)
    text = panel.status.text()
    assert "your own prompt templates" in text and "checked for the model's own prompts only" in text
    assert "fitted on default" not in text
    panel.reset_templates.click()  # back to the model's prompts, in one click
    assert panel.templates_summary.text() == "the model's own prompts" and not panel.reset_templates.isVisible()


def test_the_heat_map_follows_to_the_next_film_and_its_value_leaves_the_read_out(window, qtbot, shared_data):
    """A GUI walk: choosing another film reset the heat-map to none (one label compared across films had to be
    chosen again each time), and the read-out kept the map's cosine after the map was gone."""
    w, panel = window, window.zero_shot
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm"), str(shared_data / "dicom" / "RG1_J2KR.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 2 and bool(panel.bars) and not w.busy(), timeout=60000)
    panel.heat_label.setCurrentText("Pneumonia")
    qtbot.waitUntil(w.viewer.overlay_item.isVisible, timeout=60000)
    said = []
    w.viewer.cursor_info.connect(said.append)
    w.browser.step(1)
    qtbot.waitUntil(lambda: w.current == 1 and bool(panel.bars) and not w.busy(), timeout=60000)
    assert said and said[0] == ""  # the map went with its film, and its cosine with it
    assert panel.heat_label.currentText() == "Pneumonia"
    qtbot.waitUntil(w.viewer.overlay_item.isVisible, timeout=60000)  # the next film's map of the same label
    assert "Pneumonia: heat-map" in w.viewer.overlay_note.full_text()

