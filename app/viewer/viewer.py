"""The image viewer: zoom, pan, fit; window/level by right-drag with a live read-out; presets; invert.

What it draws is the image at screen resolution (`medflip_core.imaging.display`): an image larger than the screen
is reduced by whole blocks of pixels, so a huge scan costs the viewer screen-sized data beside the image's own
arrays, and a window/level drag redraws that much; zoomed in past it, the part in view is drawn over it from the
full-resolution values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.text_colours import CAUTION, tint
from app.viewer.colour_strip import ColourStrip
from app.viewer.elided_label import ElidedLabel, FittingLabel
from medflip_core.imaging import Radiograph, Window
from medflip_core.imaging.display import display_factor, reduce_blocks
from medflip_core.imaging.windowing import CHEST_PRESETS, full_range_window, percentile_window, preset_window, render

PRESET_NAMES = ["DICOM / file", "Auto (percentiles)", "Full range", *CHEST_PRESETS]
DISPLAY_SIDE = (2048, 4096)  # the longest side drawn: the screen's, in device pixels, within these bounds
FILE_WINDOW_NAMES = {"dicom": "DICOM window", "voi_lut": "DICOM VOI LUT", "full": "File (full range)",
                     "percentile": "File (percentiles)"}
FILE_WINDOW_TIPS = {"percentile": "The file stores no window: its own 0.5th-99.5th percentiles"}
MANUAL = "Manual (dragged)"  # shown in the preset box after a right-drag: no preset is what is on screen


def _file_window_name(source: str) -> str:
    """The first preset's name for this file: where the window it opened with came from (the DICOM header, or,
    when the file stores none, the image's own range)."""
    return FILE_WINDOW_NAMES.get(source, PRESET_NAMES[0])


def _eight_bit(shown: np.ndarray) -> np.ndarray:
    return (shown * 255).astype(np.uint8)


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
        self._factor = 1  # image pixels per display pixel, each way
        self._levels: dict[str, np.ndarray] = {}  # "raw" / "pixels" at display resolution, made when first needed
        self.view = _WindowingViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setBackgroundColor("#101214")
        self.graphics = pg.GraphicsView()
        self.graphics.setCentralItem(self.view)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        # zoomed in past the display resolution: the part in view, from the full-resolution values, over the image
        self.detail_item = pg.ImageItem(axisOrder="row-major")
        self.detail_item.setZValue(5)
        self.detail_item.setVisible(False)
        self.view.addItem(self.detail_item)
        self._detail_timer = QtCore.QTimer(self, singleShot=True, interval=0, timeout=self._draw_detail)
        self.view.sigRangeChanged.connect(self._range_changed)  # zoom, pan, and the view resized
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
        fit.setMaximumWidth(fit.fontMetrics().horizontalAdvance("Fit") + 28)  # room for the preset names instead
        # its minimum width is fixed: what it says never widens the window; its source goes first when room is short
        self.wl_label = FittingLabel("W 00000  L 00000")
        self.wl_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.wl_label.set_wordings("W/L: –")
        self.preset.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset.setMinimumContentsLength(14)  # "Auto (percentiles)" and "File (percentiles)" whole at 1280
        self.preset.setPlaceholderText(MANUAL)
        bar = QtWidgets.QHBoxLayout()
        # no "Window:" caption: the box's names say what it holds, and at 1280 px its width went to the read-out's
        # source ("(dicom)", "(manual)"), which a GUI walk missed
        self.preset.setAccessibleName("Window/level preset")
        bar.addWidget(self.preset)
        bar.addWidget(self.invert_box)
        bar.addWidget(fit)
        bar.addStretch(1)
        bar.addWidget(self.wl_label)
        # names what is drawn over the image, so it is not read as anatomy: a row of its own under the tool bar (the
        # whole viewer's width), so it neither squeezes the read-out nor changes the tool bar's minimum width; elided,
        # with the whole caption as its tooltip, when even that row is too short
        self.overlay_note = ElidedLabel()
        tint(self.overlay_note, CAUTION)  # by palette: a style sheet made its tooltip orange on yellow (a GUI walk)
        bold = self.overlay_note.font()
        bold.setBold(True)
        self.overlay_note.setFont(bold)
        self.overlay_note.setVisible(False)
        # the overlay's colour scale beside its caption, where the eye is (a GUI walk never found the one under the
        # bars); hovering the image adds the value under the pointer to the read-out
        self.overlay_scale = ColourStrip()
        self.overlay_row = QtWidgets.QWidget()
        banner = QtWidgets.QHBoxLayout(self.overlay_row)
        banner.setContentsMargins(0, 0, 0, 0)
        banner.addWidget(self.overlay_note, 1)
        banner.addWidget(self.overlay_scale)
        self.overlay_row.setVisible(False)
        self._overlay_values: np.ndarray | None = None
        self._overlay_value_name = ""
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.overlay_row)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.placeholder, 1)
        self.graphics.setVisible(False)

    # --- image -------------------------------------------------------------------------------------
    def show_preview(self, radiograph: Radiograph) -> None:
        """While `radiograph`'s full pixels are decoded elsewhere: its thumbnail scaled up to the image's size,
        marked as such. Nothing here reads the full pixels (no window/level, no read-out) until set_radiograph."""
        self.radiograph, self._on_screen, self.window = None, None, None
        self._levels, self._factor = {}, 1
        self._hide_detail()
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
        self._levels = {}
        self._factor = display_factor(radiograph.shape, self._display_side()) if radiograph is not None else 1
        self._hide_detail()
        self.clear_overlay()
        self.cursor_info.emit("")  # the read-out belonged to the previous image
        self.placeholder.setVisible(radiograph is None)
        self.graphics.setVisible(radiograph is not None)
        if radiograph is None:
            self.image_item.clear()
            self.wl_label.set_wordings("W/L: –")
            return
        self.preset.blockSignals(True)
        self.preset.setItemText(0, _file_window_name(radiograph.metadata.window.source))
        self.preset.setItemData(0, FILE_WINDOW_TIPS.get(radiograph.metadata.window.source, ""),
                                QtCore.Qt.ItemDataRole.ToolTipRole)
        self.preset.setCurrentIndex(0)
        self.preset.blockSignals(False)
        self.set_window(radiograph.metadata.window)
        self._preset_window = self.window
        self.fit()

    def set_window(self, window: Window) -> None:
        self.window = window
        self._render()
        self._say_window()
        self.window_changed.emit(window)

    def _say_window(self) -> None:
        """W/L in the corner, and INVERTED while the display is: the box stays ticked from film to film, and an
        inverted film beside one the model warns is stored inverted was easy to misread (a GUI walk)."""
        window = self.window
        if window is None:
            return
        numbers = ("INVERTED  " if self.user_invert else "") + f"W {_number(window.width)}  L {_number(window.center)}"
        self.wl_label.set_wordings(f"{numbers}  ({window.source})", numbers,
                                   tooltip=f"Window width {_number(window.width)}, level {_number(window.center)} "
                                           f"({window.source}){', display inverted (I)' if self.user_invert else ''}"
                                           ". Right-drag on the image to change them.")

    def shows_image(self) -> bool:
        """Whether an image's own pixels are on screen (not a preview, not the empty view)."""
        return self.radiograph is not None and self.window is not None

    def displayed_pixels(self) -> np.ndarray | None:
        """What is on screen, [0, 1] (bright = dense), before the 8-bit conversion, at display resolution (the
        image itself unless it is larger than the screen); made when asked, not kept."""
        if self.radiograph is None or self.window is None:
            return None
        return self._windowed(lambda: self._level("raw"), lambda: self._level("pixels"))

    def display_factor(self) -> int:
        """Image pixels per pixel of the display data, each way (1: the image is drawn at its own resolution)."""
        return self._factor

    def _display_side(self) -> int:
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        side = 0
        if screen is not None:
            size = screen.size()
            side = int(max(size.width(), size.height()) * screen.devicePixelRatio())
        return min(max(side, DISPLAY_SIDE[0]), DISPLAY_SIDE[1])

    def _level(self, kind: str) -> np.ndarray:
        """The image's "raw" or "pixels" at display resolution: the array itself when no reduction is needed."""
        if kind not in self._levels:
            rg = self.radiograph
            assert rg is not None
            self._levels[kind] = reduce_blocks(rg.raw if kind == "raw" else rg.pixels, self._factor)
        return self._levels[kind]

    def _windowed(self, raw: Callable[[], np.ndarray], pixels: Callable[[], np.ndarray]) -> np.ndarray:
        """Display values in [0, 1]: `raw()` (modality values) under the current window and invert, or `pixels()`
        (the reader's display pixels) for a VOI LUT window; only the one needed is made."""
        rg, window = self.radiograph, self.window
        assert rg is not None and window is not None
        if window.source == "voi_lut" and not self.user_invert:
            return pixels()
        return render(raw(), window, rg.metadata.inverted != self.user_invert)

    def _render(self) -> None:
        shown = self.displayed_pixels()
        if shown is None:
            return
        self.image_item.setImage(_eight_bit(shown), levels=(0, 255), autoLevels=False)
        if self._factor > 1:  # each display pixel covers a block of image pixels
            rows, columns = shown.shape
            self.image_item.setRect(QtCore.QRectF(0, 0, columns * self._factor, rows * self._factor))
        self._draw_detail()

    # --- zoomed in past the display resolution -------------------------------------------------------------
    def detail_area(self) -> QtCore.QRectF:
        """The image rectangle the detail drawing covers (empty when it is not shown)."""
        if not self.detail_item.isVisible():
            return QtCore.QRectF()
        return self.detail_item.mapRectToParent(self.detail_item.boundingRect())

    def _range_changed(self, *_: object) -> None:
        self._detail_timer.start()  # once per turn of the event loop, however many steps a zoom or pan took

    def _hide_detail(self) -> None:
        self.detail_item.setVisible(False)
        self.detail_item.clear()

    def _draw_detail(self) -> None:
        """Where the screen shows more than one of its pixels per display pixel (zoomed in on a reduced image):
        the part in view, from the full-resolution values at the step the zoom needs, so never more than about the
        view's own size is drawn (and kept)."""
        rg = self.radiograph
        if rg is None or self.window is None or self._factor == 1:
            self._hide_detail()
            return
        (x0, x1), (y0, y1) = self.view.viewRange()
        width = max(self.view.width(), 1.0) * self.graphics.devicePixelRatioF()
        step = max(1, int((x1 - x0) / width))  # image pixels per screen pixel, whole
        if step >= self._factor:
            self._hide_detail()
            return
        rows, columns = rg.shape
        left, top = (max(0, int(v) // step * step) for v in (x0, y0))
        right, bottom = min(columns, int(np.ceil(x1))), min(rows, int(np.ceil(y1)))
        if right <= left or bottom <= top:
            self._hide_detail()
            return
        crop = np.s_[top:bottom, left:right]
        shown = self._windowed(lambda: reduce_blocks(rg.raw[crop], step), lambda: reduce_blocks(rg.pixels[crop], step))
        self.detail_item.setImage(_eight_bit(shown), levels=(0, 255), autoLevels=False)
        self.detail_item.setRect(QtCore.QRectF(left, top, shown.shape[1] * step, shown.shape[0] * step))
        self.detail_item.setVisible(True)

    def apply_preset(self, index: int) -> None:
        rg = self.radiograph
        if rg is None or index < 0:  # -1: "Manual (dragged)", no preset
            return
        name = PRESET_NAMES[index]
        if name == "DICOM / file":
            window = rg.metadata.window
        elif name == "Auto (percentiles)":
            window = percentile_window(rg.raw)
        elif name == "Full range":
            window = full_range_window(rg.raw)
        else:
            window = preset_window(rg.raw, name, rg.metadata.inverted)
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
        self._say_window()

    def fit(self) -> None:
        if self.radiograph is not None:
            h, w = self.radiograph.shape
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
        if self.preset.currentIndex() != -1:  # the box no longer names a preset it does not show
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(-1)
            self.preset.blockSignals(False)

    # --- overlay (heat-maps, mask grids) ------------------------------------------------------------
    def set_overlay(self, rgba: np.ndarray | None, rect: QtCore.QRectF | None = None, caption: str = "",
                    values: np.ndarray | None = None, value_name: str = "", scale: tuple[float, float] | None = None,
                    about: str = "") -> None:
        """Draw an RGBA overlay (a heat-map) over the image; `caption` says what it is, above the image, `about`
        (its tooltip, after the caption) how to read it. `values` (any size, stretched over the image like the
        colours) are what hovering reads out as `value_name`; `scale` (low, high) labels the colour strip."""
        if rgba is None:
            self.clear_overlay()
            return
        self.overlay_item.setImage(rgba, levels=(0, 255), autoLevels=False)
        if rect is not None:
            self.overlay_item.setRect(rect)
        self.overlay_item.setVisible(True)
        self.overlay_note.setText(f"◧ {caption}" if caption else "◧ overlay")
        if about:
            self.overlay_note.setToolTip(f"{self.overlay_note.full_text()}\n\n{about}")
        self.overlay_note.setVisible(True)
        self.overlay_scale.set_range(scale, about)
        self._overlay_values, self._overlay_value_name = values, value_name or "overlay"
        self.overlay_row.setVisible(True)

    def clear_overlay(self) -> None:
        had_values = self._overlay_values is not None
        self.overlay_item.clear()
        self.overlay_item.setVisible(False)
        self.overlay_note.setVisible(False)
        self.overlay_row.setVisible(False)
        self._overlay_values = None
        if had_values:  # the read-out's cosine belonged to the map (a walk saw it stay after the map went)
            self.cursor_info.emit("")

    def overlay_value(self, x: int, y: int) -> float | None:
        """The overlay's value over image pixel (x, y), or None (no overlay with values, or over its clear part)."""
        values, rg = self._overlay_values, self.radiograph
        if values is None or rg is None or not self.overlay_item.isVisible():
            return None
        h, w = rg.shape
        vh, vw = values.shape
        value = float(values[min(vh - 1, y * vh // h), min(vw - 1, x * vw // w)])
        return value if np.isfinite(value) else None

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
            heat = self.overlay_value(x, y)
            over = f"  {self._overlay_value_name} {heat:.3f}" if heat is not None else ""
            self.cursor_info.emit(f"x {x}  y {y}{mm}  value {rg.raw[y, x]:.1f}{over}")

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
