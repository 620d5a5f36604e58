"""The image viewer: zoom, pan, fit; window/level by right-drag with a live read-out; presets; invert."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.viewer.elided_label import ElidedLabel, FittingLabel
from medflip_core.imaging import Radiograph, Window
from medflip_core.imaging.windowing import CHEST_PRESETS, full_range_window, percentile_window, preset_window, render

PRESET_NAMES = ["DICOM / file", "Auto (percentiles)", "Full range", *CHEST_PRESETS]


def _number(value: float) -> str:
    """A window value for the read-out: whole numbers for modality units, three digits for a [0, 1] float image."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


class _WindowingViewBox(pg.ViewBox):
    """Left-drag pans, wheel zooms, right-drag changes window (horizontal: width, vertical: level)."""

    window_dragged = QtCore.Signal(float, float)  # d_center, d_width in screen pixels

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_dragged.emit(float(delta.y()), float(delta.x()))
            return
        super().mouseDragEvent(ev, axis)

    def raiseContextMenu(self, ev):
        ev.accept()


class ImageViewer(QtWidgets.QWidget):
    window_changed = QtCore.Signal(object)  # Window
    cursor_info = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.radiograph: Radiograph | None = None
        self.preview: Radiograph | None = None  # an image whose thumbnail stands in while its pixels are decoded
        self.window: Window | None = None
        self.user_invert = False
        self._display: np.ndarray | None = None
        self.view = _WindowingViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setBackgroundColor("#101214")
        self.graphics = pg.GraphicsView()
        self.graphics.setCentralItem(self.view)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(10)
        self.overlay_item.setVisible(False)
        self.view.addItem(self.overlay_item)
        # a plain label (not a scene item) so it wraps and stays inside the view at any window size
        self.placeholder = QtWidgets.QLabel("Drop DICOM, PNG or JPEG files or folders here, or use File > Open")
        self.placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("background: #101214; color: #9aa4ad; font-size: 15px; padding: 24px;")
        self.view.window_dragged.connect(self._drag_window)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)

        self.preset = QtWidgets.QComboBox()
        self.preset.addItems(PRESET_NAMES)
        self.preset.setToolTip("Window/level presets (keys 1-7); right-drag on the image to adjust")
        self.preset.currentIndexChanged.connect(self.apply_preset)
        self.preset.activated.connect(self._preset_chosen)  # also when the preset already shown is chosen again
        self._preset_window: Window | None = None  # the window the last preset set (None: a drag changed it)
        self.invert_box = QtWidgets.QCheckBox("Invert")
        self.invert_box.setToolTip("Invert the display (I)")
        self.invert_box.toggled.connect(self.set_invert)
        fit = QtWidgets.QPushButton("Fit")
        fit.setToolTip("Fit the image to the view (F)")
        fit.clicked.connect(self.fit)
        # its minimum width is fixed: what it says never widens the window; its source goes first when room is short
        self.wl_label = FittingLabel("W 00000  L 00000")
        self.wl_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.wl_label.set_wordings("W/L: –")
        self.preset.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset.setMinimumContentsLength(10)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Window:"))
        bar.addWidget(self.preset)
        bar.addWidget(self.invert_box)
        bar.addWidget(fit)
        bar.addStretch(1)
        bar.addWidget(self.wl_label)
        # names what is drawn over the image, so it is not read as anatomy: a row of its own under the tool bar (the
        # whole viewer's width), so it neither squeezes the read-out nor changes the tool bar's minimum width; elided,
        # with the whole caption as its tooltip, when even that row is too short
        self.overlay_note = ElidedLabel()
        self.overlay_note.setStyleSheet("color: #ffb347; font-weight: bold;")
        self.overlay_note.setVisible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.overlay_note)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.placeholder, 1)
        self.graphics.setVisible(False)

    # --- image -------------------------------------------------------------------------------------
    def show_preview(self, radiograph: Radiograph) -> None:
        """While `radiograph`'s full pixels are decoded elsewhere: its thumbnail scaled up to the image's size,
        marked as such. Nothing here reads the full pixels (no window/level, no read-out) until set_radiograph."""
        self.radiograph, self._on_screen, self._display, self.window = None, None, None, None
        self.preview = radiograph
        self.clear_overlay()
        self.cursor_info.emit("")
        self.placeholder.setVisible(False)
        self.graphics.setVisible(True)
        small = radiograph.thumbnail
        self.image_item.setImage(255 - small if self.user_invert else small, levels=(0, 255), autoLevels=False)
        h, w = radiograph.shape
        self.image_item.setRect(QtCore.QRectF(0, 0, w, h))
        self.view.setRange(QtCore.QRectF(0, 0, w, h), padding=0.02)
        self.wl_label.set_wordings("Decoding the full image…", "Decoding…")

    def preview_failed(self) -> None:
        """The full image of the preview on screen could not be decoded (the message bar says why)."""
        if self.preview is not None:
            self.wl_label.set_wordings("Full image unavailable", "Unavailable")

    def set_radiograph(self, radiograph: Radiograph | None) -> None:
        self.preview = None
        self.image_item.resetTransform()  # a preview scaled its thumbnail up
        self.radiograph = radiograph
        # the image on screen keeps its decoded pixels while shown, whatever the bounded pixel cache evicts
        self._on_screen = radiograph.arrays() if radiograph is not None else None
        self.clear_overlay()
        self.cursor_info.emit("")  # the read-out belonged to the previous image
        self.placeholder.setVisible(radiograph is None)
        self.graphics.setVisible(radiograph is not None)
        if radiograph is None:
            self.image_item.clear()
            self.wl_label.set_wordings("W/L: –")
            return
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(0)
        self.preset.blockSignals(False)
        self.set_window(radiograph.metadata.window)
        self._preset_window = self.window
        self.fit()

    def set_window(self, window: Window) -> None:
        self.window = window
        self._render()
        numbers = f"W {_number(window.width)}  L {_number(window.center)}"
        self.wl_label.set_wordings(f"{numbers}  ({window.source})", numbers,
                                   tooltip=f"Window width {_number(window.width)}, level {_number(window.center)} "
                                           f"({window.source}). Right-drag on the image to change them.")
        self.window_changed.emit(window)

    def displayed_pixels(self) -> np.ndarray | None:
        """What is on screen, [0, 1] (bright = dense), before the 8-bit conversion."""
        return self._display

    def _render(self) -> None:
        rg = self.radiograph
        if rg is None or self.window is None:
            return
        invert = rg.metadata.inverted != self.user_invert
        if self.window.source == "voi_lut" and not self.user_invert:
            self._display = rg.pixels
        else:
            self._display = render(rg.raw, self.window, invert)
        self.image_item.setImage((self._display * 255).astype(np.uint8), levels=(0, 255), autoLevels=False)

    def apply_preset(self, index: int) -> None:
        rg = self.radiograph
        if rg is None:
            return
        name = PRESET_NAMES[index]
        if name == "DICOM / file":
            window = rg.metadata.window
        elif name == "Auto (percentiles)":
            window = percentile_window(rg.raw)
        elif name == "Full range":
            window = full_range_window(rg.raw)
        else:
            window = preset_window(rg.raw, name)
        self.set_window(window)
        self._preset_window = window

    def _preset_chosen(self, index: int) -> None:
        """The user picked a preset: re-applied when it is the one already selected but a drag moved the window."""
        if self.window is not self._preset_window:
            self.apply_preset(index)

    def toggle_invert(self) -> None:
        self.invert_box.toggle()

    def choose_preset(self, index: int) -> None:
        if 0 <= index < self.preset.count():
            self.preset.setCurrentIndex(index)
            self._preset_chosen(index)

    def set_invert(self, on: bool) -> None:
        self.user_invert = on
        self._render()

    def fit(self) -> None:
        if self.radiograph is not None:
            h, w = self.radiograph.pixels.shape
            self.view.setRange(QtCore.QRectF(0, 0, w, h), padding=0.02)

    def _drag_window(self, dy: float, dx: float) -> None:
        if self.window is None:
            return
        span = max(self.window.width, 1e-6)
        # MONOCHROME1 data runs the other way: dragging up still brightens what the user sees
        sign = -1.0 if self.radiograph is not None and self.radiograph.metadata.inverted else 1.0
        center = self.window.center + sign * dy * span / 400.0
        width = max(span * (1.0 + dx / 300.0), 1e-3)
        self.set_window(Window(center=center, width=width, source="manual"))

    # --- overlay (heat-maps, mask grids) ------------------------------------------------------------
    def set_overlay(self, rgba: np.ndarray | None, rect: QtCore.QRectF | None = None, caption: str = "") -> None:
        """Draw an RGBA overlay (a heat-map) over the image; `caption` says what it is, above the image."""
        if rgba is None:
            self.clear_overlay()
            return
        self.overlay_item.setImage(rgba, levels=(0, 255), autoLevels=False)
        if rect is not None:
            self.overlay_item.setRect(rect)
        self.overlay_item.setVisible(True)
        self.overlay_note.setText(f"◧ {caption}" if caption else "◧ overlay")
        self.overlay_note.setVisible(True)

    def clear_overlay(self) -> None:
        self.overlay_item.clear()
        self.overlay_item.setVisible(False)
        self.overlay_note.setVisible(False)

    def _mouse_moved(self, pos: QtCore.QPointF) -> None:
        rg = self.radiograph
        if rg is None:
            return
        point = self.view.mapSceneToView(pos)
        x, y = int(point.x()), int(point.y())
        h, w = rg.raw.shape
        if 0 <= x < w and 0 <= y < h:
            spacing = rg.metadata.pixel_spacing
            mm = f"  ({y * spacing[0]:.1f}, {x * spacing[1]:.1f}) mm" if spacing else ""
            self.cursor_info.emit(f"x {x}  y {y}{mm}  value {rg.raw[y, x]:.1f}")

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        key = event.key()
        if QtCore.Qt.Key.Key_1 <= key <= QtCore.Qt.Key.Key_7:
            index = key - QtCore.Qt.Key.Key_1
            self.choose_preset(index)
            return
        if key == QtCore.Qt.Key.Key_I:
            self.invert_box.toggle()
            return
        if key in (QtCore.Qt.Key.Key_F, QtCore.Qt.Key.Key_R):
            self.fit()
            return
        super().keyPressEvent(event)
