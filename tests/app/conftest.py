from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """Settings and user models go to a temporary folder, never the developer's own."""
    monkeypatch.setenv("MEDFLIP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def window(qtbot):
    from app.window.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    return win


def send_drop(widget, paths: list[str]) -> bool:
    """A real drag-enter, drag-move and drop of local files at the widget's centre; whether it was accepted."""
    from PySide6 import QtCore, QtGui, QtWidgets

    mime = QtCore.QMimeData()  # kept alive here: the events do not own it
    mime.setUrls([QtCore.QUrl.fromLocalFile(p) for p in paths])
    pos = widget.rect().center()
    args = (QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
            QtCore.Qt.KeyboardModifier.NoModifier)
    enter = QtGui.QDragEnterEvent(pos, *args)
    QtWidgets.QApplication.sendEvent(widget, enter)
    QtWidgets.QApplication.sendEvent(widget, QtGui.QDragMoveEvent(pos, *args))
    drop = QtGui.QDropEvent(QtCore.QPointF(pos), *args)
    QtWidgets.QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


@pytest.fixture
def drop():
    return send_drop


@pytest.fixture(scope="session")
def small_probe(kermany_folder, tmp_path_factory) -> Path:
    """A real probe on 60 real Kermany films (few validation patients: its results carry the small-data warning)."""
    from medflip_core.events import EventWriter
    from medflip_core.finetune.probe import ProbeConfig, run_probe

    work = tmp_path_factory.mktemp("probe-fits")
    cfg = ProbeConfig(images=str(kermany_folder(30)), out=str(work / "small-probe"), cache_dir=str(work / "cache"),
                      n_boot=100, val_fraction=0.25)
    run_probe(cfg, EventWriter(enabled=False))
    return Path(cfg.out)


def shown_text(view, index) -> str:
    """The text a view paints in a cell, elided as its delegate and style elide it (what a person reads there); in
    a view that wraps its text, the whole text when all its lines fit the cell."""
    from PySide6 import QtCore, QtWidgets

    option = QtWidgets.QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    view.itemDelegateForIndex(index).initStyleOption(option, index)
    style = view.style()
    text = style.subElementRect(QtWidgets.QStyle.SubElement.SE_ItemViewItemText, option, view)
    margin = style.pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1
    width = text.width() - 2 * margin
    if view.wordWrap():
        lines = option.fontMetrics.boundingRect(QtCore.QRect(0, 0, width, 100000),
                                                int(QtCore.Qt.TextFlag.TextWordWrap), option.text)
        if lines.width() <= width and lines.height() <= text.height():
            return option.text
    return option.fontMetrics.elidedText(option.text, option.textElideMode, width)


@pytest.fixture
def shown():
    return shown_text
