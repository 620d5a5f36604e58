from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """Settings and user models go to a temporary folder, never the developer's own."""
    monkeypatch.setenv("MEDFLIP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    return win
