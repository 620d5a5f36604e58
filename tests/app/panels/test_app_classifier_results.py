"""The classifier results view: its ROC plot is a fixed picture inside a scrolling page."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


def test_the_wheel_over_the_roc_curves_scrolls_the_page_and_never_zooms(qtbot, small_probe):
    """A GUI walk: one wheel turn over the ROC plot zoomed its axes to -10..12 with no obvious way back, while the
    confusion matrix waited below the fold."""
    from app.panels.classifier_results import ClassifierResults

    results = ClassifierResults()
    qtbot.addWidget(results)
    results.resize(420, 260)  # smaller than the page: it scrolls
    results.show()
    assert results.show_bundle(str(small_probe))
    qtbot.wait(100)
    bar = results.page.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0
    before = results.roc.getViewBox().viewRange()
    viewport = results.roc.viewport()
    centre = QtCore.QPointF(viewport.width() / 2, viewport.height() / 2)
    wheel = QtGui.QWheelEvent(centre, viewport.mapToGlobal(centre), QtCore.QPoint(0, 0), QtCore.QPoint(0, -120),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(viewport, wheel)
    qtbot.wait(50)
    assert results.roc.getViewBox().viewRange() == before
    assert bar.value() > 0  # the page moved down towards the confusion matrix
    # two classes have one ROC curve between them: the second is dashed so the first still shows beneath it
    styles = [c.opts["pen"].style() for c in results.curves.values()]
    assert len(styles) == 2 and styles[0] == QtCore.Qt.PenStyle.SolidLine and styles[1] == QtCore.Qt.PenStyle.DashLine
