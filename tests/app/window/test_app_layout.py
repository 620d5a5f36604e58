"""Layouts that hold on a laptop screen (issue 23 item 7) and the smaller window items of item 8."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore

LAPTOP = (1280, 740)  # 1280x800 less a taskbar


def test_the_window_fits_a_laptop_screen_and_never_grows_itself(window, qtbot):
    window.resize(*LAPTOP)
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= LAPTOP[1] and window.minimumSizeHint().width() <= LAPTOP[0]
    # a 1,366 px laptop at 125 % scaling gives 1,093 px: a GUI walk found a 1,207 px minimum cutting the tabs off
    assert window.minimumSizeHint().width() <= 1093
    bar = window.tabs.tabBar()
    assert all(bar.tabRect(i).width() >= bar.fontMetrics().horizontalAdvance(bar.tabText(i)) + 8
               for i in range(bar.count()))  # compact, every name whole
    for i in range(window.tabs.count()):  # no tab makes the window taller than the screen
        window.tabs.setCurrentIndex(i)
        qtbot.wait(20)
        assert window.height() == LAPTOP[1], window.tabs.tabText(i)
    long_error = "big.dcm: this DICOM image is truncated. " + "Its pixel data ends early. " * 12
    window.error(long_error, details="\n".join(f"file{i}.dcm: cannot be read." for i in range(40)))
    window.messages.details_button.setChecked(True)
    qtbot.wait(50)
    assert window.height() == LAPTOP[1] and window.messages.isVisible()  # was 819, then 889 px
    assert window.statusBar().isVisible() and window.statusBar().geometry().bottom() < window.height()
    window.messages.dismiss()
    qtbot.wait(20)
    assert window.height() == LAPTOP[1]


def test_training_plots_keep_a_usable_height_at_1280x740(window, qtbot):
    window.resize(*LAPTOP)
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    qtbot.wait(50)
    assert panel.plots.loss_plot.height() >= 110 and panel.plots.sigma_plot.height() >= 110
    assert panel.status.progress.isVisible() and panel.status.stats.isVisible()  # outside the form's scroll area
    start = panel.status.start_button.mapTo(panel, QtCore.QPoint(0, panel.status.start_button.height()))
    assert panel.status.start_button.isVisible() and start.y() <= panel.height()  # never scrolled out of sight
    panel.views.setCurrentWidget(panel.results)
    qtbot.wait(20)
    assert panel.results.roc.height() >= 150  # was squeezed to ~60 px


def test_starting_a_pretraining_shows_the_live_curves(window, qtbot, tmp_path, corpus):
    panel = window.training
    panel.views.setCurrentWidget(panel.results)  # as after a fine-tuning
    panel.form.images.setText(str(tmp_path / "missing"))
    panel.form.corpus.setText(str(corpus))
    panel.start()
    assert panel.views.currentIndex() == 0
    qtbot.waitUntil(lambda: panel.process is None, timeout=120000)


def test_the_same_error_is_listed_once_in_details(window):
    message = "gone.dcm: the file is no longer there."
    window.error(message, details=message + "\nsecond.dcm: cannot be read.")
    assert window.messages.details.toPlainText().count("gone.dcm") == 1
    assert "second.dcm" in window.messages.details.toPlainText()
    window.error("cut.dcm: this DICOM image is truncated. Its pixel data (a 1841x1955 image of 16-bit pixels, "
                 "compressed as JPEG 2000) ends early, after 2,140,699 bytes of the compressed stream. Copy it again.")
    assert window.messages.text() == "cut.dcm: this DICOM image is truncated."  # the headline, not a cut sentence
    assert "2,140,699 bytes" in window.messages.details.toPlainText()
    # details that only repeat the headline: no Details button (a GUI walk opened one that said it again)
    empty = "/data/empty: the folder contains no images (DICOM, PNG, JPEG, TIFF or BMP)."
    window.error(empty, details=empty)
    assert window.messages.text() == empty and not window.messages.details_button.isVisibleTo(window.messages)


@pytest.fixture
def with_image(window, qtbot, shared_data):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)  # the bundled model
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: len(window.images) == 1 and window.viewer.displayed_pixels() is not None,
                    timeout=60000)
    return window


def test_a_heat_map_is_named_on_the_viewer_and_leaves_with_its_tab(with_image, qtbot):
    w = with_image
    qtbot.waitUntil(lambda: bool(w.zero_shot.bars), timeout=60000)
    w.zero_shot.heat_label.setCurrentText("Pneumonia")
    qtbot.waitUntil(w.viewer.overlay_item.isVisible, timeout=60000)
    # the label first: a narrow tool bar elides the rest (the whole caption is the tooltip)
    assert w.viewer.overlay_note.isVisible() and "Pneumonia: heat-map" in w.viewer.overlay_note.text()
    w.tabs.setCurrentWidget(w.mask_view)  # beside the mask sampling it would read as a mask
    assert not w.viewer.overlay_item.isVisible() and not w.viewer.overlay_note.isVisible()
    w.tabs.setCurrentWidget(w.zero_shot)  # back: the chosen heat-map is drawn again, not forgotten
    assert w.zero_shot.heat_label.currentText() == "Pneumonia"
    qtbot.waitUntil(w.viewer.overlay_item.isVisible, timeout=60000)
    assert "Pneumonia: heat-map" in w.viewer.overlay_note.text()


def test_retrieval_does_not_replace_the_status_message(with_image, qtbot):
    w = with_image
    w.statusBar().showMessage("Loaded 1 image(s).", 5000)
    w.retrieval.sentences.clear()
    w.retrieval.request()
    qtbot.waitUntil(lambda: w.retrieval.sentences.count() > 0 and not w.busy(), timeout=60000)
    assert "sentences" not in w.statusBar().currentMessage()


def test_screenshots_of_every_tab_at_two_sizes(with_image, qtbot):
    shots = Path("/tmp/medflip-screenshots") / "tabs"
    shots.mkdir(parents=True, exist_ok=True)
    w = with_image
    for size in ((1280, 800), (1920, 1080)):
        w.resize(*size)
        for i in range(w.tabs.count()):
            w.tabs.setCurrentIndex(i)
            qtbot.wait(200)
            assert w.size() == QtCore.QSize(*size)
            name = w.tabs.tabText(i).replace(" ", "-").lower()
            assert w.grab().save(str(shots / f"{name}-{size[0]}x{size[1]}.png"))


def test_the_tabs_stay_under_the_mouse_when_a_tab_takes_the_whole_width(window, qtbot):
    """A GUI walk: opening Training or Labelling (they fold the browser and the viewer) moved the tab bar from the
    right panel to the window's left edge, so the next click landed on another tab."""
    window.resize(1600, 900)  # wider than the tab bar needs: where the bar sits is a choice
    qtbot.wait(50)
    bar = window.tabs.tabBar()

    def tab_x(i: int) -> int:
        return bar.mapTo(window, bar.tabRect(i).topLeft()).x()

    names = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    before = [tab_x(i) for i in range(len(names))]
    for wide in ("Training", "Labelling"):
        window.tabs.setCurrentIndex(names.index(wide))
        qtbot.waitUntil(lambda: window.viewer.width() == 0, timeout=5000)  # the tab took the whole width
        assert [tab_x(i) for i in range(len(names))] == pytest.approx(before, abs=2), wide
        window.tabs.setCurrentIndex(0)
        qtbot.waitUntil(lambda: window.viewer.width() > 0, timeout=5000)
