"""The patch-mask sampling that pre-training applies, shown on the user's own image.

Same preprocessing (medflip_core.preprocess) and same masking (medflip_core.masking) as the trainer:
for a given seed the kept patches are exactly the ones a training step would keep.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from medflip_core.imaging import Radiograph
from medflip_core.masking import PatchMask, patch_grid, sample_patch_mask
from medflip_core.preprocess import PreprocessConfig, preprocess


def mask_rgba(mask_row: np.ndarray, grid: tuple[int, int], patch: int, shade: int = 200) -> np.ndarray:
    """RGBA overlay at model-input resolution: dropped patches shaded, kept ones clear, grid lines."""
    rows, cols = grid
    kept = np.zeros(rows * cols, dtype=bool)
    kept[mask_row] = True
    kept = kept.reshape(rows, cols)
    size = (rows * patch, cols * patch)
    rgba = np.zeros((*size, 4), dtype=np.uint8)
    dropped = np.repeat(np.repeat(~kept, patch, axis=0), patch, axis=1)
    rgba[dropped] = (20, 24, 32, shade)
    rgba[::patch, :, :] = (80, 170, 255, 110)
    rgba[:, ::patch, :] = (80, 170, 255, 110)
    return rgba


class MaskView(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.pre = PreprocessConfig()
        self.patch = 16
        self.radiograph: Radiograph | None = None
        self.mask: PatchMask | None = None
        self.plot = pg.GraphicsLayoutWidget()
        self.view = self.plot.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setMouseEnabled(False, False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(5)
        self.view.addItem(self.image_item)
        self.view.addItem(self.overlay)
        self.ratio = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.ratio.setRange(0, 90)
        self.ratio.setSingleStep(5)
        self.ratio.setPageStep(5)
        self.ratio.setValue(75)
        self.ratio.valueChanged.connect(self.resample)
        self.ratio_label = QtWidgets.QLabel()
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.valueChanged.connect(self.resample)
        again = QtWidgets.QPushButton("Re-sample")
        again.setToolTip("Draw a new random mask (next seed)")
        again.clicked.connect(lambda: self.seed.setValue(self.seed.value() + 1))
        self.counts = QtWidgets.QLabel()
        self.counts.setWordWrap(True)
        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Mask ratio"), 0, 0)
        form.addWidget(self.ratio, 0, 1)
        form.addWidget(self.ratio_label, 0, 2)
        form.addWidget(QtWidgets.QLabel("Seed"), 1, 0)
        form.addWidget(self.seed, 1, 1)
        form.addWidget(again, 1, 2)
        note = QtWidgets.QLabel("Shaded patches are dropped before the vision transformer; training sees only the "
                                "clear ones. The model input is the image resized and padded as training does.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #8a939b;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.counts)
        layout.addWidget(self.plot, 1)
        layout.addWidget(note)
        self.resample()

    def set_model_geometry(self, pre: PreprocessConfig, patch_size: int) -> None:
        self.pre, self.patch = pre, patch_size
        self.set_radiograph(self.radiograph)

    @property
    def grid(self) -> tuple[int, int]:
        return patch_grid(self.pre.image_size, self.patch)

    def set_radiograph(self, rg: Radiograph | None) -> None:
        self.radiograph = rg
        if rg is None:
            self.image_item.clear()
        else:
            model_input = preprocess(rg, self.pre)[0] * self.pre.std + self.pre.mean
            self.image_item.setImage((np.clip(model_input, 0, 1) * 255).astype(np.uint8), levels=(0, 255))
            self.view.autoRange(padding=0.01)
        self.resample()

    def resample(self) -> None:
        ratio = self.ratio.value() / 100.0
        self.ratio_label.setText(f"{self.ratio.value()} %")
        rows, cols = self.grid
        self.mask = sample_patch_mask(1, rows * cols, ratio, self.seed.value())
        kept = self.mask.num_kept
        total = rows * cols
        self.counts.setText(f"{kept} of {total} patches kept, {total - kept} dropped "
                            f"({rows}×{cols} grid of {self.patch}-pixel patches at {self.pre.image_size} px); "
                            f"a masked step runs the transformer on {kept + 1} tokens instead of {total + 1}.")
        self.overlay.setImage(mask_rgba(self.mask.keep[0], self.grid, self.patch), levels=(0, 255))

    def kept_patches(self) -> np.ndarray:
        return self.mask.keep[0] if self.mask is not None else np.zeros(0, dtype=np.int64)
