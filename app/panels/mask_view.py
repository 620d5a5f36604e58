"""The patch-mask sampling that pre-training applies, shown on the user's own image.

Same preprocessing (medflip_core.imaging.preprocess) and same masking module (medflip_core.masking) as the
trainer: for a given strategy, seed and scores the kept patches are exactly the ones a training step
would keep. The attention scores come from the loaded model through ONNX Runtime (no torch here).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.panels.reconstruction import ReconstructionBox
from app.text_colours import NOTE, tint
from app.viewer.colour_strip import heat_lookup_table
from medflip_core.imaging import Radiograph
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from medflip_core.masking import (
    DEFAULT_GUIDED_SHARE,
    MASK_STRATEGIES,
    MAX_MASK_RATIO,
    PatchMask,
    integrity_scores,
    make_patch_mask,
    patch_grid,
    patch_text_scores,
)

STRATEGY_TEXT = {
    "random": "random (MedFLIP): every patch equally likely to be dropped",
    "integrity": "integrity (our reading of MLIP): the flattest patches are dropped first",
    "attention": "attention (our reading of XLIP): the patches most similar to the text are dropped first",
}
SCORE_TITLE = {
    "random": "no score: random masking draws uniform noise",
    "integrity": "integrity score: std of the model-input pixels per patch (low = dropped first)",
    "attention": "patch-text similarity: best cosine with the text's prompts (high = dropped first)",
}
# the colours of a score map and the words for its ends: patch-text similarity in the Zero-shot heat-map's colours
# (a GUI walk saw the same quantity in viridis here and blue-green-red there), the integrity score in viridis
SCORE_COLOURS = {"integrity": (pg.colormap.get("viridis").getLookupTable(nPts=256), "dark", "yellow"),
                 "attention": (heat_lookup_table(), "blue", "red")}


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
    for offset in (0, 1):  # two pixels wide: shown at ~0.7x (a narrow panel), one-pixel lines dropped out
        rgba[offset::patch, :, :] = (80, 170, 255, 110)
        rgba[:, offset::patch, :] = (80, 170, 255, 110)
    return rgba


def score_image(scores: np.ndarray, grid: tuple[int, int], patch: int) -> np.ndarray:
    """Per-patch scores (L,) as a float image at model-input resolution (one flat block per patch)."""
    return np.kron(np.asarray(scores, dtype=np.float32).reshape(grid), np.ones((patch, patch), np.float32))


class MaskView(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.pre = PreprocessConfig()
        self.patch = 16
        self.engine = None
        self.radiograph: Radiograph | None = None
        self.pixels: np.ndarray | None = None  # (1, C, S, S) model input
        self.mask: PatchMask | None = None
        self.scores: np.ndarray | None = None  # (L,) the scores that drove the last mask
        self.score_ms: float | None = None  # measured time of the last scoring pass
        self.mask_ms: float | None = None
        self._tokens: np.ndarray | None = None  # patch tokens of the current image (ONNX), cached
        self.image_pass_ms: float | None = None  # measured ONNX image pass that gave them
        self.plot = pg.GraphicsLayoutWidget()
        self.view = self.plot.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.score_view = self.plot.addViewBox(row=0, col=1, lockAspect=True, invertY=True, enableMenu=False)
        self.score_view.setXLink(self.view)
        self.score_view.setYLink(self.view)
        for box in (self.view, self.score_view):
            box.setMouseEnabled(False, False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(5)
        self.view.addItem(self.image_item)
        self.view.addItem(self.overlay)
        self.score_item = pg.ImageItem(axisOrder="row-major")
        self.score_grid = pg.ImageItem(axisOrder="row-major")
        self.score_grid.setZValue(5)
        self.score_view.addItem(self.score_item)
        self.score_view.addItem(self.score_grid)

        self.strategy = QtWidgets.QComboBox()
        for index, name in enumerate(MASK_STRATEGIES):
            self.strategy.addItem(name, name)
            self.strategy.setItemData(index, STRATEGY_TEXT[name], QtCore.Qt.ItemDataRole.ToolTipRole)
        self.strategy.currentIndexChanged.connect(self._strategy_changed)
        self.ratio = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.ratio.setRange(0, round(MAX_MASK_RATIO * 100))  # the trainer's range, in per cent
        self.ratio.setSingleStep(5)
        self.ratio.setPageStep(5)
        self.ratio.setValue(75)
        self.ratio.valueChanged.connect(self.resample)
        self.ratio_label = QtWidgets.QLabel()
        self.share = QtWidgets.QSpinBox()
        self.share.setRange(0, 100)
        self.share.setSuffix(" % of drops by score")
        self.share.setValue(int(round(DEFAULT_GUIDED_SHARE * 100)))
        self.share.setToolTip("Guided strategies: this share of the dropped patches is chosen by the score, "
                              "the rest at random (the trainer's --mask-guided-share)")
        self.share.valueChanged.connect(self.resample)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.valueChanged.connect(self.resample)
        again = QtWidgets.QPushButton("Re-sample")
        again.setToolTip("Draw a new mask (next seed)")
        again.clicked.connect(lambda: self.seed.setValue(self.seed.value() + 1))
        self.text = QtWidgets.QLineEdit()
        self.text.setPlaceholderText("labels or sentences, comma-separated (the batch's text)")
        self.text.setToolTip("attention: the text the patches are compared with; labels are expanded to prompts")
        self.text.editingFinished.connect(self.resample)
        self.counts = QtWidgets.QLabel()
        self.counts.setWordWrap(True)
        self.counts.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score_label = QtWidgets.QLabel()
        self.score_label.setWordWrap(True)
        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Strategy"), 0, 0)
        form.addWidget(self.strategy, 0, 1)
        form.addWidget(self.share, 0, 2)
        form.addWidget(QtWidgets.QLabel("Mask ratio"), 1, 0)
        form.addWidget(self.ratio, 1, 1)
        form.addWidget(self.ratio_label, 1, 2)
        form.addWidget(QtWidgets.QLabel("Seed"), 2, 0)
        form.addWidget(self.seed, 2, 1)
        form.addWidget(again, 2, 2)
        form.addWidget(QtWidgets.QLabel("Text"), 3, 0)
        form.addWidget(self.text, 3, 1, 1, 2)
        note = QtWidgets.QLabel("Shaded patches are dropped before the vision transformer; training sees only "
                                "the clear ones. For integrity and attention, the score that drove the choice is "
                                "shown beside or below. The model input is the image resized and padded as "
                                "training does. Research use only.")
        note.setWordWrap(True)
        tint(note, NOTE)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.counts)
        layout.addWidget(self.score_label)
        layout.addWidget(self.plot, 3)
        self.reconstruction = ReconstructionBox(self.mask_request)
        layout.addWidget(self.reconstruction)  # a button row until a reconstruction is shown, then half the room
        self.reconstruction.shown.connect(lambda: layout.setStretchFactor(self.reconstruction, 3))
        layout.addWidget(note)
        self._strategy_changed()

    # --- inputs -------------------------------------------------------------------------------------------

    def set_engine(self, engine) -> None:
        """The loaded model (medflip_core.inference.engine.Engine): its geometry, and patch tokens for `attention`."""
        self.engine = engine
        if engine is not None and not self.text.text().strip():
            self.text.setText(", ".join(label for label in engine.bundle.default_labels if label != "No Finding"))
            self.text.setCursorPosition(0)  # the first labels in view, not the end of a long line
        if engine is None:
            self.set_model_geometry(self.pre, self.patch)
        else:
            self.set_model_geometry(engine.pre, int(engine.bundle.manifest["model"]["patch_size"]))

    def set_model_geometry(self, pre: PreprocessConfig, patch_size: int) -> None:
        self.pre, self.patch = pre, patch_size
        self.set_radiograph(self.radiograph)

    @property
    def grid(self) -> tuple[int, int]:
        return patch_grid(self.pre.image_size, self.patch)

    @property
    def strategy_name(self) -> str:
        return str(self.strategy.currentData())

    def texts(self) -> list[str]:
        """The attention text: each comma-separated entry expanded to its prompts, as zero-shot does."""
        entries = [t.strip() for t in self.text.text().split(",") if t.strip()]
        if self.engine is None or not entries:
            return []
        return [t for texts in self.engine.prompt_texts(entries).values() for t in texts]

    def set_radiograph(self, rg: Radiograph | None) -> None:
        self.radiograph = rg
        self._tokens = None
        if rg is None:
            self.pixels = None
            self.image_item.clear()
        else:
            self.pixels = preprocess(rg, self.pre)[None]
            model_input = self.pixels[0, 0] * self.pre.std + self.pre.mean
            self.image_item.setImage((np.clip(model_input, 0, 1) * 255).astype(np.uint8), levels=(0, 255))
            self.view.autoRange(padding=0.01)
        self.resample()

    def _strategy_changed(self) -> None:
        strategy = self.strategy_name
        self.share.setEnabled(strategy != "random")
        self.text.setEnabled(strategy == "attention")
        self.strategy.setToolTip(STRATEGY_TEXT[strategy])
        self.resample()

    # --- scoring and sampling -----------------------------------------------------------------------------

    def _scores(self, strategy: str) -> np.ndarray:
        """(L,) scores of the current image for a guided strategy; raises ValueError when they cannot be had."""
        if self.pixels is None:
            raise ValueError("open an image to see its scores")
        if strategy == "integrity":
            return integrity_scores(self.pixels, self.patch)[0]
        if self.engine is None:
            raise ValueError("the attention strategy needs a loaded model (its patch tokens)")
        texts = self.texts()
        if not texts:
            raise ValueError("type the text to compare the patches with (labels or sentences)")
        if self._tokens is None:
            start = time.perf_counter()
            self._tokens = self.engine.embed_pixels(self.pixels).patch_tokens
            self.image_pass_ms = (time.perf_counter() - start) * 1000.0
        return patch_text_scores(self._tokens, self.engine.embed_texts(texts))[0]

    def resample(self) -> None:
        strategy = self.strategy_name
        ratio = self.ratio.value() / 100.0
        self.ratio_label.setText(f"{self.ratio.value()} %")
        rows, cols = self.grid
        total = rows * cols
        self.scores, self.score_ms = None, None
        try:
            if strategy != "random":
                start = time.perf_counter()
                self.scores = self._scores(strategy)
                self.score_ms = (time.perf_counter() - start) * 1000.0
            start = time.perf_counter()
            self.mask = make_patch_mask(strategy, 1, total, ratio, self.seed.value(),
                                        None if self.scores is None else self.scores[None],
                                        self.share.value() / 100.0)
            self.mask_ms = (time.perf_counter() - start) * 1000.0
        except ValueError as exc:
            self.mask = None
            self.counts.setText(f"No mask: {exc}.")
            self.score_label.setText(SCORE_TITLE[strategy])
            self.overlay.clear()
            self.score_item.clear()
            self.score_grid.clear()
            return
        kept = self.mask.num_kept
        scoring = f" Measured here, per image: choosing the patches {self.mask_ms:.2f} ms"
        if strategy == "integrity":
            scoring += f", integrity scores {self.score_ms:.2f} ms (pixel statistics, no model)"
        elif strategy == "attention":
            scoring += (f", scoring pass {self.image_pass_ms:.1f} ms (ONNX image encoder on all patches, no "
                        f"gradient) + {self.score_ms:.1f} ms (text embeddings, cached after their first use, and "
                        "similarity)")
        scoring += ". The command “medflip bench throughput” measures what share of a whole training step this takes."
        extra = f" plus a no-gradient scoring pass on all {total + 1}" if strategy == "attention" else ""
        cost = (f"a masked step runs the transformer on {kept + 1} tokens instead of {total + 1}{extra}"
                if kept < total else f"nothing is masked: the transformer runs on all {total + 1} tokens, as an "
                                     "unmasked step does")
        self.counts.setText(f"{kept} of {total} patches kept, {total - kept} dropped "
                            f"({rows}×{cols} grid of {self.patch}-pixel patches at {self.pre.image_size} px); "
                            f"{cost}.{scoring}")
        self.overlay.setImage(mask_rgba(self.mask.keep[0], self.grid, self.patch), levels=(0, 255))
        self._show_scores(strategy)

    def _show_scores(self, strategy: str) -> None:
        if self.scores is None:
            self.score_item.clear()
            self.score_grid.clear()
            self.score_label.setText(SCORE_TITLE[strategy])
            self._arrange()
            return
        low, high = float(self.scores.min()), float(self.scores.max())
        self.score_item.setLookupTable(SCORE_COLOURS[strategy][0])
        self.score_item.setImage(score_image(self.scores, self.grid, self.patch),
                                 levels=(low, high if high > low else low + 1e-6))
        self.score_grid.setImage(mask_rgba(self.mask.keep[0], self.grid, self.patch, shade=0), levels=(0, 255))
        self._caption()

    def _caption(self) -> None:
        where = self._arrange()
        low, high = float(self.scores.min()), float(self.scores.max())
        _, low_end, high_end = SCORE_COLOURS[self.strategy_name]
        self.score_label.setText(f"{where}, {SCORE_TITLE[self.strategy_name]}: {low:.3f} ({low_end}) to {high:.3f} "
                                 f"({high_end}).")

    def score_placement(self) -> str:
        """Where the score map goes: none without scores, else beside or below the mask, whichever gives both
        square views the larger side in the space there is."""
        if self.scores is None:
            return "none"
        width, height = max(self.plot.width(), 1), max(self.plot.height(), 1)
        return "beside" if min(width / 2, height) >= min(width, height / 2) else "below"

    def _arrange(self) -> str:
        """Put the score view where score_placement says (the mask alone uses the whole area); 'Right'/'Below'."""
        placement = self.score_placement()
        if placement == getattr(self, "_placement", None):
            return "Below" if placement == "below" else "Right"
        layout = self.plot.ci
        if self.score_view in layout.items:
            layout.removeItem(self.score_view)
        self.score_view.setVisible(placement != "none")
        if placement == "beside":
            layout.addItem(self.score_view, row=0, col=1)
        elif placement == "below":
            layout.addItem(self.score_view, row=1, col=0)
        self._placement = placement
        QtCore.QTimer.singleShot(0, self._fit)  # once the views have their new sizes
        return "Below" if placement == "below" else "Right"

    def _fit(self) -> None:
        """The model input fills its view. A range fitted while the mask had the whole area kept its width when
        the score map took half of it: a GUI walk saw both pictures at ~155 px in a 510 x 280 area."""
        if self.pixels is not None:
            self.view.autoRange(padding=0.01)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.scores is not None:  # only the place of the score map may change, not its image
            self._caption()
        QtCore.QTimer.singleShot(0, self._fit)

    def mask_request(self) -> dict | None:
        """The mask on screen as `medflip reconstruct` takes it (None without an image)."""
        if self.radiograph is None or self.mask is None:
            return None
        return {"path": str(self.radiograph.path), "keep": self.kept_patches().tolist(), "grid": self.grid[0],
                "ratio": self.ratio.value() / 100.0, "strategy": self.strategy_name, "seed": self.seed.value()}

    def kept_patches(self) -> np.ndarray:
        return self.mask.keep[0] if self.mask is not None else np.zeros(0, dtype=np.int64)
