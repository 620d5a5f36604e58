"""GUI walk 44 #11: on a Zero-shot bar near 50 % the edge of the blue fill cut through the per cent ("4|7.2 %": the
digits on the fill were white, those beside it black). The text is one dark colour with a light halo, whatever the
fill: readable on the fill, beside it, and across its edge."""

from __future__ import annotations

import pytest
from PySide6 import QtGui, QtWidgets

from app.panels.threshold_bar import ThresholdBar


def _dark_and_light(image: QtGui.QImage, xs: range, ys: range) -> tuple[int, int]:
    """How many pixels in the box are dark (glyph ink) and how many light (paper or halo)."""
    dark = light = 0
    for x in xs:
        for y in ys:
            grey = QtGui.qGray(image.pixel(x, y))
            dark += grey < 70
            light += grey > 200
    return dark, light


@pytest.mark.parametrize("value", [0, 472, 493, 513, 1000])
def test_the_per_cent_reads_dark_on_light_whatever_the_fill(qtbot, value):
    bar = ThresholdBar()  # no threshold: its black mark would count as ink
    bar.setStyle(QtWidgets.QStyleFactory.create("Fusion"))  # the app's style (app/main.py)
    qtbot.addWidget(bar)
    bar.setRange(0, 1000)
    bar.setValue(value)
    bar.setFormat(f"{value / 10:.1f} %")
    bar.resize(360, 22)
    bar.show()
    qtbot.waitExposed(bar)
    image = bar.grab().toImage()
    scale = image.width() / bar.width()
    metrics = bar.fontMetrics()
    width = metrics.horizontalAdvance(bar.text())
    left, right = round((bar.width() - width) / 2 * scale), round((bar.width() + width) / 2 * scale)
    ys = range(round((bar.height() / 2 - metrics.ascent() / 3) * scale),
               round((bar.height() / 2 + metrics.ascent() / 3) * scale))
    edge = round(value / 1000 * bar.width() * scale)
    sides = [range(left, min(right, edge - 2)), range(max(left, edge + 3), right)]  # on the fill, beside it
    for xs in sides:
        if len(xs) < 4:  # the text lies all on one side
            continue
        dark, light = _dark_and_light(image, xs, ys)
        assert dark >= 4, (value, xs)  # the glyphs are dark on the fill too (they were white there)
        assert light >= dark, (value, xs)  # and stand on light: a halo on the fill, the bar's paper beside it
    assert bar.text() == bar.format()  # the text itself is unchanged
