"""The live training curves: loss and its parts (image-text, σ₁ term, and the masked image modelling
reconstruction of the dropped patches when the run has a decoder), and σ₁ of positive and negative pairs.

Events only change the series; a timer copies them into the curves in place (setData) at most every
PLOT_REFRESH_MS, so a fast trainer cannot make the GUI repaint per event, and a long run's curve costs what the
plot's width costs (clip to view, peak downsampling), not its length."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from medflip_core.events import StepEvent

PLOT_REFRESH_MS = 250  # live curves are redrawn at most 4 times a second, however fast the events come
EMPTY_STEPS = 10  # the step axis of an empty plot


def coloured_key(entries: list[tuple[str, str]]) -> str:
    """A plot's key as coloured words for its title: a legend inside the plot would cover the curves."""
    return " · ".join(f"<span style='color:{colour}'>━ {name}</span>" for name, colour in entries)


class TrainingPlots(QtWidgets.QSplitter):
    """Two plots, one above the other; `add_step` feeds them, `flush` draws what changed."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(QtCore.Qt.Orientation.Vertical, parent)
        pg.setConfigOptions(antialias=True)
        loss_key = [("total", "#e6e6e6"), ("contrastive", "#4fa3ff"), ("svd", "#ffb347"),
                    ("reconstruction", "#c792ea"), ("instance", "#7fdbca")]
        self.loss_key = loss_key
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setTitle("loss  " + coloured_key(loss_key), size="9pt")
        self.loss_plot.setLabel("bottom", "step")
        self.curves = {key: self.loss_plot.plot(pen=pg.mkPen(colour, width=2 if key == "loss" else 1), name=name)
                       for key, (name, colour) in zip(("loss", "contrastive", "svd", "mim", "instance"), loss_key,
                                                               strict=True)}
        sigma_key = [("positive pairs", "#5fd38d"), ("negative pairs", "#ff6b6b")]
        self.sigma_plot = pg.PlotWidget()
        self.sigma_plot.setTitle("σ₁ (token-level, normalised)  " + coloured_key(sigma_key), size="9pt")
        self.sigma_plot.setLabel("bottom", "step")
        for key, (name, colour) in zip(("sigma1_pos", "sigma1_neg"), sigma_key, strict=True):
            self.curves[key] = self.sigma_plot.plot(pen=pg.mkPen(colour, width=2), name=name)
        for curve in self.curves.values():
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.series: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self.curves}
        self._stale: set[str] = set()
        self.timer = QtCore.QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(PLOT_REFRESH_MS)
        self.timer.timeout.connect(self.flush)
        self.addWidget(self.loss_plot)
        self.addWidget(self.sigma_plot)
        for plot in (self.loss_plot, self.sigma_plot):
            plot.setMinimumHeight(120)  # a curve stays readable however small the window
            plot.getAxis("left").setTickDensity(0.5)  # labels that do not overlap on a short plot
            plot.getAxis("left").setWidth(40)
        self.setChildrenCollapsible(False)
        self._pretraining = True
        self.clear()

    def show_job(self, pretraining: bool) -> None:
        """Pre-training plots its loss parts and σ₁; a fine-tuning reports one loss, so the rest is not shown."""
        self.sigma_plot.setVisible(pretraining)
        self._pretraining = pretraining
        self._title()

    def _title(self) -> None:
        """The key names the instance term only for a run that has one (a trainer option, not in the form)."""
        shown = self.loss_key if self._pretraining else self.loss_key[:1]
        if not self.series["instance"][0]:
            shown = [entry for entry in shown if entry[0] != "instance"]
        self.loss_plot.setTitle("loss  " + coloured_key(shown), size="9pt")

    def clear(self) -> None:
        for xs, ys in self.series.values():
            xs.clear()
            ys.clear()
        self._stale.clear()
        for curve in self.curves.values():
            curve.setData([], [])
        for plot in (self.loss_plot, self.sigma_plot):  # a new run's axes: not the previous run's (a GUI walk)
            plot.setXRange(0, EMPTY_STEPS, padding=0)  # whole steps before the first point, not 0.1 ... 0.9
            plot.setYRange(0, 1, padding=0)
            plot.enableAutoRange(axis="y")
        self._x_following = False
        self._title()

    def add_step(self, event: StepEvent) -> None:
        for key in self.series:
            value = getattr(event, key, None)
            if isinstance(value, int | float) and value == value:
                xs, ys = self.series[key]
                while xs and xs[-1] >= event.step:  # a resumed run repeats the steps after its checkpoint
                    xs.pop()
                    ys.pop()
                xs.append(event.step)
                ys.append(float(value))
                self._stale.add(key)
        if self._stale and not self.timer.isActive():
            self.timer.start()

    def flush(self) -> None:
        """Copy the series that changed since the last refresh into their curves."""
        if "instance" in self._stale and len(self.series["instance"][0]) == 1:
            self._title()
        if self._stale and not self._x_following:  # the first points: the step axis follows them from now on
            for plot in (self.loss_plot, self.sigma_plot):
                plot.enableAutoRange(axis="x")
            self._x_following = True
        for key in self._stale:
            xs, ys = self.series[key]
            self.curves[key].setData(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
        self._stale.clear()
