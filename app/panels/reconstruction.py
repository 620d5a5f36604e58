"""Under the mask: what a pre-training run's reconstruction decoder makes of the dropped patches.

Exported models never carry the decoder (it only trains the image tower), so this reads a run folder or a
checkpoint the user picks, and the reconstruction runs in a child process (`medflip reconstruct`: torch, the
trainer add-on in the light app). The GUI passes the mask on screen and shows the three panels it gets back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.text_colours import NOTE, tint
from medflip_core.processes import medflip_command
from medflip_core.resources import user_data_dir

MaskRequest = Callable[[], "dict | None"]  # path, keep, grid, ratio, strategy, seed of the mask on screen


class ReconstructionBox(QtWidgets.QWidget):
    """A button to choose a run, the run's reconstruction of the current mask, and what it says."""

    shown = QtCore.Signal()  # a reconstruction is on screen: the box wants room

    def __init__(self, current_mask: MaskRequest, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.current_mask = current_mask
        self.run = ""
        self.process: QtCore.QProcess | None = None
        self.button = QtWidgets.QPushButton("Reconstruct with a run…")
        self.button.setToolTip("A pre-training run trained with masked image modelling (Reconstruction above 0) "
                               "fills in the dropped patches of this mask")
        self.button.clicked.connect(self.choose_run)
        self.again = QtWidgets.QPushButton("Again")
        self.again.setToolTip("Reconstruct the current mask with the same run")
        self.again.clicked.connect(self.start)
        self.again.setEnabled(False)
        self.caption = QtWidgets.QLabel()
        self.caption.setWordWrap(True)
        tint(self.caption, NOTE)
        self.picture = _ClickablePicture()
        self.picture.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumHeight(0)
        self.picture.setToolTip("Click for the three panels at full size, in their own window")
        self.picture.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.picture.clicked.connect(self.show_large)
        self.large: LargeReconstruction | None = None
        self.picture.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self.picture.setVisible(False)
        self._pixmap: QtGui.QPixmap | None = None
        self._said = ""  # what the last reconstruction's caption says (without the tab's click hint)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addWidget(self.again)
        row.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)

    @property
    def out(self) -> Path:
        """The PNG the child process writes (one, overwritten: a window made a temporary folder each before)."""
        return user_data_dir() / "cache" / "reconstruction.png"

    def choose_run(self) -> None:
        runs = user_data_dir() / "runs"
        start = self.run or (str(runs) if self._has_runs(runs) else "")
        if not start:  # a dialog on a folder that does not exist, listing nothing, said nothing (a GUI walk)
            self.caption.setText(f"No pre-training run in {runs} yet: a run of the Training tab (Job: pre-train, "
                                 "Reconstruction above 0) lands there. A run or checkpoint folder made elsewhere "
                                 "(e.g. by `python -m trainer pretrain`) can be chosen in the dialog.")
            start = str(Path.home())
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Pre-training run (or checkpoint) with a decoder",
                                                            start)
        if folder:
            self.use_run(folder)

    @staticmethod
    def _has_runs(runs: Path) -> bool:
        try:
            return any(p.is_dir() for p in runs.iterdir())
        except OSError:
            return False

    def use_run(self, folder: str) -> bool:
        """Reconstruct the current mask with `folder`'s decoder; False when there is nothing to reconstruct."""
        self.run = folder
        self.again.setEnabled(True)
        return self.start()

    def start(self) -> bool:
        request = self.current_mask()
        if not self.run or self.process is not None:
            return False
        if request is None:
            self.caption.setText("Open an image first: the reconstruction fills in the mask shown above.")
            return False
        self.out.parent.mkdir(parents=True, exist_ok=True)
        args = ["reconstruct", self.run, request["path"], "--out", str(self.out), "--json",
                "--keep", ",".join(str(int(i)) for i in request["keep"]), "--keep-grid", str(request["grid"]),
                "--mask-ratio", f"{request['ratio']:.2f}", "--strategy", request["strategy"],
                "--seed", str(request["seed"])]
        program, full = medflip_command(args)
        self.caption.setText(f"Reconstructing with {Path(self.run).name}…")
        self.process = QtCore.QProcess(self)
        self.process.finished.connect(self._finished)
        self.process.start(program, full)
        return True

    def _finished(self, code: int, _status: QtCore.QProcess.ExitStatus) -> None:
        out = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace").strip()
        err = bytes(self.process.readAllStandardError()).decode("utf-8", "replace").strip()
        self.process = None
        if code != 0:
            self.caption.setText("Reconstruction failed: " + (err.splitlines()[-1] if err else f"exit code {code}"))
            return
        said = json.loads(out.splitlines()[-1])
        self._pixmap = QtGui.QPixmap(str(self.out))
        self.picture.setVisible(True)
        self.shown.emit()
        self._fit()
        self._said = (f"{Path(self.run).name}: {said['caption']}. Loss on the dropped patches {said['loss']:.3f} "
                      "(the training loss; lower is better)." + (f" Note: {said['note']}." if said.get("note") else ""))
        self.caption.setText(self._said + " Click the panels to see them larger.")
        if self.large is not None and self.large.isVisible():  # an open large view follows the new reconstruction
            self.show_large()

    def show_large(self) -> None:
        """The three panels in a resizable window of their own: in the tab they share the column with the mask
        (about 90 px each at 1280x800, too small to judge what the decoder made of a lesion)."""
        if self._pixmap is None or self._pixmap.isNull():
            return
        if self.large is None:
            self.large = LargeReconstruction(self.window())
        self.large.show_pixmap(self._pixmap, f"Reconstruction: {Path(self.run).name}", self._said)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is not None and not self._pixmap.isNull():
            self.picture.setPixmap(_scaled(self._pixmap, self.picture.size()))


def _scaled(pixmap: QtGui.QPixmap, size: QtCore.QSize) -> QtGui.QPixmap:
    return pixmap.scaled(max(size.width(), 1), max(size.height(), 1), QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                         QtCore.Qt.TransformationMode.SmoothTransformation)


class _ClickablePicture(QtWidgets.QLabel):
    clicked = QtCore.Signal()

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == QtCore.Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit()


class _FittedPicture(QtWidgets.QLabel):
    """A picture that scales to its label's size as the window is resized."""

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self._source: QtGui.QPixmap | None = None

    def set_pixmap(self, pixmap: QtGui.QPixmap) -> None:
        self._source = pixmap
        self.setPixmap(_scaled(pixmap, self.size()))

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._source is not None:
            self.setPixmap(_scaled(self._source, self.size()))


class LargeReconstruction(QtWidgets.QDialog):
    """A non-modal window with the reconstruction at up to full size and its caption."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.picture = _FittedPicture()
        self.text = QtWidgets.QLabel()
        self.text.setWordWrap(True)
        column = QtWidgets.QVBoxLayout(self)
        column.addWidget(self.picture, 1)
        column.addWidget(self.text)

    def show_pixmap(self, pixmap: QtGui.QPixmap, title: str, text: str) -> None:
        self.setWindowTitle(title)
        self.text.setText(text)
        if not self.isVisible():  # the panels at twice their size, or as large as 90 % of the screen allows
            screen = self.screen().availableGeometry() if self.screen() is not None else QtCore.QRect(0, 0, 1280, 800)
            scale = min(2.0, 0.9 * screen.width() / pixmap.width(), 0.75 * screen.height() / pixmap.height())
            self.resize(max(480, int(pixmap.width() * scale) + 24), max(240, int(pixmap.height() * scale) + 90))
        self.show()
        self.raise_()
        self.picture.set_pixmap(pixmap)
