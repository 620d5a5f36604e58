"""The Labelling tab's live learning curve: validation ROC AUC with its 95 % CI against the labels given, and the
zero-shot AUC on the same validation films beside it."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

FLOOR = 0.4  # the AUC axis starts here, or lower when a point, its CI or zero-shot's AUC is below it
EMPTY_LABELS = 20  # the labels axis before the first point (the first comes after a few answers)


def auc_floor(values: list[float]) -> float:
    """The lowest AUC shown: FLOOR, or a step of 0.1 under the lowest of `values` (never below 0)."""
    low = min((v for v in values if math.isfinite(v)), default=math.inf)
    return FLOOR if low >= FLOOR else max(0.0, math.floor((low - 0.02) * 10) / 10)


class LearningCurve(pg.PlotWidget):
    """Validation AUC (95 % CI bars) against answers given, with zero-shot's AUC on the same films."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(150)
        self.setTitle("validation AUC  <span style='color:#4fa3ff'>━ learned, │ 95 % CI</span>  "
                      "<span style='color:#aaaaaa'>┅ zero-shot</span>", size="9pt")
        self.setToolTip("Validation ROC AUC of the head learned from your answers (its 95 % CI resamples the "
                        "validation patients; under 10 patients a class it is widened), and of zero-shot on the "
                        "same validation films; the dotted line is chance (0.5)")
        self.setLabel("bottom", "labels given")
        self.setYRange(FLOOR, 1.0)
        self.setXRange(0, EMPTY_LABELS)  # whole labels, not 0-1, before the first point
        self.curve = self.plot(pen=pg.mkPen("#4fa3ff", width=2), symbol="o", symbolSize=5, symbolBrush="#4fa3ff")
        self.zero = self.plot(pen=pg.mkPen("#aaaaaa", width=1, style=QtCore.Qt.PenStyle.DashLine))
        self.zero.setZValue(10)  # dashed over the learned line: where the two are equal, both stay visible
        self.bars = pg.ErrorBarItem(pen=pg.mkPen("#4fa3ff"), beam=0.0)
        self.addItem(self.bars)
        chance = pg.InfiniteLine(pos=0.5, angle=0, pen=pg.mkPen("#666666", width=1, style=QtCore.Qt.PenStyle.DotLine))
        self.addItem(chance)

    def show_points(self, points: list) -> None:
        x = np.array([p.labels for p in points], dtype=float)
        auc = np.array([p.auc for p in points])
        self.curve.setData(x, auc)
        self.zero.setData(x, np.array([p.zero_shot_auc for p in points]))
        if len(points):
            low = np.array([p.ci95[0] for p in points])
            high = np.array([p.ci95[1] for p in points])
            self.bars.setData(x=x, y=auc, top=high - auc, bottom=auc - low)
            # nothing below the axis: a point under chance, its CI and zero-shot's line stay on screen (the floor
            # is the lowest over every point so far, so it never rises again for the same folder)
            self.setYRange(auc_floor([*auc, *low, *(p.zero_shot_auc for p in points)]), 1.0)
            self.enableAutoRange(axis="x")
