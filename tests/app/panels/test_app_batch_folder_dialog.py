"""A GUI walk: Batch's "Folder to score" dialog opened in the app's own working folder. It opens beside the folder
scored last, else in the home folder."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets


def test_the_folder_dialog_opens_beside_the_last_folder_scored(window, qtbot, shared_data, monkeypatch):
    panel = window.batch
    assert panel.choose_start_dir() == Path.home()
    asked: list[str] = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        lambda parent, caption, start="": asked.append(start) or "")
    panel._choose()
    assert asked == [str(Path.home())]
    panel.folder = str(shared_data / "dicom")  # as after scoring that folder
    panel._choose()
    assert asked[-1] == str(shared_data)
