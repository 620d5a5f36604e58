"""The window's menus: File (open, recent, quit), View (navigation, window/level), Help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtGui, QtWidgets

from app.window.about import show_about, show_keys

IMAGE_FILTER = "Images (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff DICOMDIR);;All files (*)"


def build_menus(window: Any) -> QtWidgets.QMenu:
    """Menus calling the window's public methods; returns the Recent menu (see fill_recent)."""
    file_menu = window.menuBar().addMenu("&File")
    open_files = QtGui.QAction("&Open files…", window, shortcut=QtGui.QKeySequence.StandardKey.Open)
    open_files.triggered.connect(lambda: _open_files(window))
    open_folder = QtGui.QAction("Open &folder…", window, shortcut="Ctrl+Shift+O")
    open_folder.triggered.connect(lambda: _open_folder(window))
    recent = file_menu.addMenu("Open &recent")
    file_menu.addActions([open_files, open_folder])
    file_menu.addMenu(recent)
    file_menu.addSeparator()
    open_model = QtGui.QAction("Open &model folder…", window)  # a bundle a colleague sent (a GUI walk: only --model)
    open_model.setToolTip("A model bundle folder (with manifest.json): added to the Model picker and selected")
    open_model.triggered.connect(lambda: _open_model(window))
    file_menu.addAction(open_model)
    file_menu.addSeparator()
    quit_action = QtGui.QAction("&Quit", window, shortcut=QtGui.QKeySequence.StandardKey.Quit)
    quit_action.triggered.connect(window.close)
    file_menu.addAction(quit_action)
    view_menu = window.menuBar().addMenu("&View")
    for text, keys, slot in (("Next image", ("Down", "PgDown"), lambda: window.browser.step(1)),
                             ("Previous image", ("Up", "PgUp"), lambda: window.browser.step(-1)),
                             ("Reset view", ("R",), window.viewer.fit),
                             ("Invert", ("I",), window.viewer.toggle_invert)):
        action = QtGui.QAction(text, window)  # one entry each; Page Down/Up are the second keys
        action.setShortcuts([QtGui.QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        view_menu.addAction(action)
    for i in range(7):
        action = QtGui.QAction(f"W/L preset {i + 1}", window, shortcut=str(i + 1))
        action.triggered.connect(lambda _=False, i=i: window.viewer.choose_preset(i))
        window.addAction(action)
    for keys, step in (("Ctrl+Tab", 1), ("Ctrl+Shift+Tab", -1), ("Ctrl+PgDown", 1), ("Ctrl+PgUp", -1)):
        action = QtGui.QAction(window, shortcut=keys)  # wherever the focus is (a GUI walk: only inside the panel)
        action.triggered.connect(lambda _=False, step=step: _next_tab(window, step))
        window.addAction(action)
    help_menu = window.menuBar().addMenu("&Help")
    keys = QtGui.QAction("&Keyboard and mouse", window, shortcut="F1")
    keys.triggered.connect(lambda: show_keys(window))
    about = QtGui.QAction("&About MedFLIP Studio", window)
    about.triggered.connect(lambda: show_about(window))
    help_menu.addActions([keys, about])
    return recent


def _next_tab(window: Any, step: int) -> None:
    """The innermost tabs around the focus switch (the Training tab's curves / classifier results when the focus is
    in them, as Qt's own Ctrl+Tab would), else the window's tabs."""
    tabs = window.tabs
    widget = QtWidgets.QApplication.focusWidget()
    while widget is not None and widget is not window.tabs:
        if isinstance(widget, QtWidgets.QTabWidget) and widget.count() > 1:
            tabs = widget
            break
        widget = widget.parentWidget()
    tabs.setCurrentIndex((tabs.currentIndex() + step) % tabs.count())


def _start_dir(window: Any) -> str:
    """Where a file dialog opens: the last folder opened, else the home folder (never the app's own folder)."""
    last = window.settings.get("last_dir", "")
    return last if last and Path(last).is_dir() else str(Path.home())


def _open_model(window: Any) -> None:
    folder = QtWidgets.QFileDialog.getExistingDirectory(window, "Model bundle folder", _start_dir(window))
    if folder:
        window.use_model_folder(folder)


def recent_label(entry: str | list[str]) -> str:
    """A folder or file as its path; files dropped together as the first one and a count."""
    if isinstance(entry, str):
        return entry
    more = len(entry) - 1
    return f"{entry[0]} and {more:,} more file{'s' if more != 1 else ''}"


def _existing(entry: Any) -> str | list[str] | None:
    if isinstance(entry, str):
        return entry if Path(entry).exists() else None
    if isinstance(entry, list):
        paths = [p for p in entry if isinstance(p, str) and Path(p).exists()]
        return (paths[0] if len(paths) == 1 else paths) or None
    return None


def fill_recent(menu: QtWidgets.QMenu, settings: Any, open_paths: Any) -> None:
    """The Recent menu: one entry per opening (a drop of 300 files is one entry, re-opening all of them); it
    lists only paths that still exist (and forgets the others)."""
    menu.clear()
    recent = [e for e in (_existing(e) for e in settings.get("recent", [])) if e is not None]
    if recent != settings.get("recent", []):
        settings.set("recent", recent)
    for entry in recent:
        paths = [entry] if isinstance(entry, str) else list(entry)
        action = menu.addAction(recent_label(entry))
        action.setToolTip("\n".join(paths[:20]) + (f"\n… {len(paths) - 20:,} more" if len(paths) > 20 else ""))
        action.triggered.connect(lambda _=False, p=paths: open_paths(p))
    menu.addSeparator()
    clear = menu.addAction("Clear recent")
    clear.setEnabled(bool(recent))

    def clear_recent() -> None:
        settings.set("recent", [])
        fill_recent(menu, settings, open_paths)

    clear.triggered.connect(clear_recent)


def _open_files(window: Any) -> None:
    files, _ = QtWidgets.QFileDialog.getOpenFileNames(window, "Open images", _start_dir(window), IMAGE_FILTER)
    if files:
        window.open_paths(files)


def _open_folder(window: Any) -> None:
    folder = QtWidgets.QFileDialog.getExistingDirectory(window, "Open folder", _start_dir(window))
    if folder:
        window.open_paths([folder])
