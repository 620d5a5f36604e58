"""A GUI walk: on a leg film with the model's eight labels, the Zero-shot tab's two image warnings took six lines and
pushed the Heat-map chooser below the fold of a 1280x800 window. Each warning is one line now, its first words shown
and the whole text in its tooltip. Real DICOM leg film, the bundled model, offscreen."""

from __future__ import annotations

from PySide6 import QtCore


def _on_screen(panel, widget) -> bool:
    port = panel.page.viewport()
    top = widget.mapTo(port, QtCore.QPoint(0, 0)).y()
    return top >= 0 and top + widget.height() <= port.height()


def test_the_heat_map_chooser_stays_in_view_on_a_film_with_warnings(window, qtbot, shared_data):
    w, panel = window, window.zero_shot
    assert (w.width(), w.height()) == (1280, 800)
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG3_J2KI.dcm")])
    qtbot.waitUntil(lambda: len(panel.bars) == 8 and not w.busy(), timeout=60000)
    warnings = w.session.warnings(w.current)
    assert len(warnings) >= 2  # not a chest (its tags), unlike the chest films (its pixels)
    assert all(_on_screen(panel, bar) for bar in panel.bars.values())
    assert _on_screen(panel, panel.heat_label)
    assert not panel.page.verticalScrollBar().isVisible()
    shown = panel.warnings.lines
    assert [line.full_text() for line in shown] == [f"⚠ {x[:1].upper()}{x[1:]}" for x in warnings]
    for line, warning in zip(shown, warnings, strict=True):
        metrics = line.fontMetrics()
        assert line.height() < 2 * metrics.lineSpacing()  # one line
        visible = metrics.elidedText(line.full_text(), QtCore.Qt.TextElideMode.ElideRight, line.contentsRect().width())
        first_words = " ".join(line.full_text().split()[:4])
        assert visible.startswith(first_words)  # the warning's first words stay readable
        assert warning[1:] in line.toolTip()  # the whole warning on hovering
    panel.labels_edit.setPlainText("Pneumonia")  # the bars go: the image's warnings go with them
    assert not panel.warnings.isVisible() and not panel.warnings.lines
