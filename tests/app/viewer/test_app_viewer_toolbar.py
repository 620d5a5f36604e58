"""The viewer's tool bar under a heat-map (issue 31 item 9, leftovers): its caption and the window/level read-out are
readable at 1280 px wide, and a caption that comes and goes leaves the image as it was (fitted, or as the user
zoomed it), never a wider window. Real film, the bundled model, offscreen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

pytestmark = pytest.mark.slow
FILM = "RG1_UNCR.dcm"  # 1841 x 1955 CR chest, window W 30000 L 15000 from its header


@pytest.fixture
def scored(window, qtbot, shared_data):
    """The window at 1280x800 with the film open and its zero-shot bars (what a heat-map needs)."""
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.open_paths([str(shared_data / "dicom" / FILM)])
    qtbot.waitUntil(lambda: window.viewer.radiograph is not None and bool(window.zero_shot.bars)
                    and not window.busy(), timeout=60000)
    return window


def settle(qtbot) -> None:
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
        qtbot.wait(20)


def choose_heat_map(window, qtbot, label: str = "Pneumonia") -> None:
    window.zero_shot.heat_label.setCurrentText(label)
    qtbot.waitUntil(lambda: window.viewer.overlay_item.isVisible() and window.viewer.overlay_note.isVisible(),
                    timeout=60000)
    settle(qtbot)


def clear_heat_map(window, qtbot) -> None:
    window.zero_shot.heat_label.setCurrentIndex(0)
    assert not window.viewer.overlay_note.isVisible()
    settle(qtbot)


def image_on_screen(viewer) -> QtCore.QRectF:
    """The film's rectangle in the image view's viewport, in screen pixels."""
    rows, columns = viewer.radiograph.shape
    scene = viewer.view.mapViewToScene(QtCore.QRectF(0, 0, columns, rows)).boundingRect()
    return QtCore.QRectF(viewer.graphics.mapFromScene(scene).boundingRect())


def fits(viewer) -> bool:
    """The whole film is in the viewport and fills it in one direction (less the fit's 2 % margins)."""
    image, port = image_on_screen(viewer), viewer.graphics.viewport().rect()
    inside = (image.left() >= -1 and image.top() >= -1 and image.right() <= port.width() + 1
              and image.bottom() <= port.height() + 1)
    return inside and max(image.width() / port.width(), image.height() / port.height()) > 0.9


def readable(label: QtWidgets.QLabel, text: str) -> bool:
    """`text` is drawn whole inside the label (a right-aligned text wider than its label loses its left end)."""
    return label.fontMetrics().horizontalAdvance(text) <= label.contentsRect().width()


def same_rect(a: QtCore.QRectF, b: QtCore.QRectF) -> bool:
    return all(abs(x - y) <= 1.0 for x, y in zip(a.getRect(), b.getRect(), strict=True))


def test_the_read_out_and_the_heat_map_caption_are_readable_at_1280_px(scored, qtbot):
    w, viewer = scored, scored.viewer
    assert w.width() == 1280
    readout = viewer.wl_label
    shown = readout.text()
    assert "W 30000" in shown and "L 15000" in shown and readable(readout, shown), (shown, readout.width())
    assert "dicom" in readout.toolTip().lower()  # where the window came from, when the row has no room for it
    assert shown.endswith("(dicom)")  # and now the row has room for it at 1280 (a GUI walk missed it)
    choose_heat_map(w, qtbot)
    note = viewer.overlay_note
    caption = note.full_text()
    assert caption.startswith("◧ Pneumonia: heat-map")
    assert readable(note, caption), (caption, note.width())  # was 0 px wide: "◧ Pn…" at best
    shown = readout.text()
    assert "W 30000" in shown and "L 15000" in shown and readable(readout, shown)
    # a label too long for any row: elided, the whole caption in its tooltip, the window no wider
    note.setText("◧ " + "Pneumonia with a left lower lobe consolidation and a small pleural effusion: heat-map " * 3)
    settle(qtbot)
    assert note.toolTip() == note.full_text() and w.width() == 1280
    assert max(w.minimumSizeHint().width(), w.minimumWidth()) <= 1280


def test_a_caption_that_comes_and_goes_leaves_the_image_fitted_or_as_zoomed(scored, qtbot):
    w, viewer = scored, scored.viewer
    w.resize(1, w.height())  # the narrowest the window goes: no slack anywhere to hide a wider tool bar
    settle(qtbot)
    narrowest, port = w.width(), viewer.graphics.viewport().size()
    before = image_on_screen(viewer)
    assert fits(viewer)
    choose_heat_map(w, qtbot)
    assert w.width() == narrowest and fits(viewer)  # was 6 px wider with the caption in the tool bar, and stayed so
    clear_heat_map(w, qtbot)
    assert w.width() == narrowest and viewer.graphics.viewport().size() == port
    assert same_rect(image_on_screen(viewer), before) and fits(viewer)
    # zoomed by hand (the mouse wheel over the image): the caption coming and going keeps that zoom
    port_widget = viewer.graphics.viewport()
    centre = QtCore.QPointF(port_widget.rect().center())
    wheel = QtGui.QWheelEvent(centre, port_widget.mapToGlobal(centre), QtCore.QPoint(0, 0), QtCore.QPoint(0, 360),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(port_widget, wheel)
    settle(qtbot)
    zoomed = image_on_screen(viewer)
    assert zoomed.width() > before.width() * 1.5  # the wheel zoomed in
    choose_heat_map(w, qtbot)
    clear_heat_map(w, qtbot)
    assert same_rect(image_on_screen(viewer), zoomed)
    viewer.fit()
    settle(qtbot)
    assert same_rect(image_on_screen(viewer), before)


def test_the_heat_map_has_its_colour_scale_and_its_value_under_the_pointer(scored, qtbot):
    """A GUI walk: no colour bar where the map is, hovering read only the pixel value, and nothing said that the map
    is no localisation. The scale's ends are the map's own lowest and highest cosine, and the read-out adds the
    cosine of the patch under the pointer."""
    w, viewer = scored, scored.viewer
    choose_heat_map(w, qtbot)
    strip = viewer.overlay_scale
    assert strip.isVisible() and strip.low.text() and strip.high.text()
    low, high = float(strip.low.text()), float(strip.high.text())
    assert -1 <= low < high <= 1
    ramp = strip.ramp.grab().toImage()  # drawn, blue to red (a scaled pixmap once drew nothing at this size)
    blue_end, red_end = ramp.pixelColor(1, ramp.height() // 2), ramp.pixelColor(ramp.width() - 2, ramp.height() // 2)
    assert blue_end.blue() > 200 > blue_end.red() and red_end.red() > 200 > red_end.blue()
    values = viewer._overlay_values  # the scale's ends are the map's own lowest and highest value
    assert (low, high) == (round(float(np.nanmin(values)), 2), round(float(np.nanmax(values)), 2))
    assert "not a localisation" in viewer.overlay_note.toolTip() and "38 %" in viewer.overlay_note.toolTip()
    rows, columns = viewer.radiograph.shape
    seen = []
    viewer.cursor_info.connect(seen.append)
    for x, y in ((columns // 2, rows // 2), (10, 10), (columns - 5, rows - 5)):
        viewer._mouse_moved(viewer.view.mapViewToScene(QtCore.QPointF(x + 0.5, y + 0.5)))
        value = viewer.overlay_value(x, y)
        assert value is not None and low - 0.005 <= value <= high + 0.005
        assert seen[-1].endswith(f"cosine {value:.3f}") and f"x {x}  y {y}" in seen[-1]
    clear_heat_map(w, qtbot)
    assert not strip.isVisible() and viewer.overlay_value(columns // 2, rows // 2) is None
    viewer._mouse_moved(viewer.view.mapViewToScene(QtCore.QPointF(10.5, 10.5)))
    assert "cosine" not in seen[-1]
