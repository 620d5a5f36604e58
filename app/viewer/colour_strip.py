"""An overlay's colour scale in one short row, for the viewer's caption line (a heat-map's lowest and highest
value at the ends of the ramp the overlay is coloured with); and that ramp as a lookup table, so that patch-text
similarity has one colour map wherever it is drawn (the Zero-shot heat-map, the Mask sampling tab's attention)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtGui, QtWidgets

from app.text_colours import CAUTION, tint
from medflip_core.inference.heatmap import colour_map

RAMP_SIZE = (72, 10)  # px


def heat_lookup_table(size: int = 256) -> np.ndarray:
    """(size, 3) uint8: the heat-map's colours from its low end (blue) through green to its high end (red)."""
    return colour_map(np.linspace(0, 1, size))


class ColourStrip(QtWidgets.QWidget):
    """An overlay's colour scale in one short row: the value at the blue end, the ramp, the value at the red end."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.low, self.high = QtWidgets.QLabel(), QtWidgets.QLabel()
        for end in (self.low, self.high):
            tint(end, CAUTION)
        self.ramp = QtWidgets.QLabel()
        width, height = RAMP_SIZE  # drawn at its size: a small label scaling a 256-px ramp drew nothing (Qt 6.11)
        self.ramp.setFixedSize(width, height)
        colours = np.ascontiguousarray(np.repeat(heat_lookup_table(width)[None], height, axis=0))
        image = QtGui.QImage(colours.data, width, height, width * 3, QtGui.QImage.Format.Format_RGB888).copy()
        self.ramp.setPixmap(QtGui.QPixmap.fromImage(image))
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(4, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.low)
        row.addWidget(self.ramp)
        row.addWidget(self.high)
        self.setVisible(False)

    def set_range(self, scale: tuple[float, float] | None, about: str = "") -> None:
        if scale is None:
            self.setVisible(False)
            return
        self.low.setText(f"{scale[0]:.2f}")
        self.high.setText(f"{scale[1]:.2f}")
        self.setToolTip(f"Colours run from {scale[0]:.3f} (blue) to {scale[1]:.3f} (red): this image's lowest and "
                        "highest patch" + (f"\n\n{about}" if about else ""))
        self.setVisible(True)
