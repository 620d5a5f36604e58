"""The tool bar's model picker: bundled, user and named-folder models; only a bundle the user chose is used."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.settings import Settings
from medflip_core.bundles.bundle import MANIFEST
from medflip_core.bundles.model_store import list_models


def bundle_problem(path: str) -> str:
    """Why a folder cannot be used as a model ('' when it can)."""
    folder = Path(path)
    if (folder / MANIFEST).is_file():
        return ""
    if not folder.exists():
        return f"The model folder {path} does not exist."
    if (folder / "checkpoints").is_dir() or (folder / "config.json").is_file():
        return (f"{folder.name} is a training run, not a model: export it first "
                f"(medflip export {path} OUT) and open OUT.")
    return f"{path} is not a MedFLIP model bundle (it has no {MANIFEST})."


class ModelPicker(QtWidgets.QComboBox):
    model_chosen = QtCore.Signal(str)  # a bundle folder to load

    def __init__(self, settings: Settings, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.in_use = ""  # the folder last asked for; a refresh keeps it selected
        self.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setMinimumWidth(220)
        self.currentIndexChanged.connect(self._chosen)

    def refresh(self, select: str | None = None) -> bool:
        """Re-read the installed models; False when there is none."""
        self.blockSignals(True)
        self.clear()
        for entry in list_models():
            self.addItem(f"{entry.name} ({entry.source})", str(entry.path))
        for path in self.settings.get("extra_models", []):
            if not bundle_problem(path) and self.findData(path) < 0:
                self.addItem(f"{Path(path).name} (folder)", path)
        wanted = select or self.in_use or self.settings.get("model")
        index = max(self.findData(wanted) if wanted else -1, 0)
        self.setCurrentIndex(index)
        self.blockSignals(False)
        if self.count() and self.itemData(index) != self.in_use:  # not the model already in use
            self._chosen(index)
        return self.count() > 0

    def add_folder(self, path: str) -> str:
        """Remember a bundle folder the user named and select it; returns the problem if it is not one."""
        problem = bundle_problem(path)
        if not problem:
            path = str(Path(path).resolve())
            extra = [p for p in self.settings.get("extra_models", []) if p != path] + [path]
            self.settings.set("extra_models", extra)
            self.refresh(select=path)
        return problem

    def _chosen(self, index: int) -> None:
        path = self.itemData(index)
        if path:
            self.in_use = path
            self.model_chosen.emit(path)
