"""The main window: browser | viewer | tool tabs. Loading and scoring run off the GUI thread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.about import NOTICE, show_about
from app.batch_panel import BatchPanel
from app.browser import Browser
from app.mask_view import MaskView
from app.retrieval_panel import RetrievalPanel
from app.settings import Settings
from app.tags_panel import TagsPanel
from app.training_panel import TrainingPanel
from app.viewer import ImageViewer
from app.workers import Task, start
from app.zero_shot_panel import ZeroShotPanel
from medflip_core.errors import MedflipError
from medflip_core.imaging import ImageLoadError, Radiograph, iter_image_files, load_image
from medflip_core.model_store import list_models
from medflip_core.ood import out_of_distribution
from medflip_core.preprocess import letterbox_geometry


def load_paths(paths: list[str], progress=None) -> tuple[list[Radiograph], list[str]]:
    """Every image under the given files/folders; unreadable ones become messages."""
    files, errors = [], []
    for p in paths:
        try:
            files.extend(iter_image_files(p))
        except ImageLoadError as exc:
            errors.append(str(exc))
    images = []
    for i, f in enumerate(files):
        try:
            images.append(load_image(f))
        except ImageLoadError as exc:
            errors.append(str(exc))
        if progress is not None:
            progress(i + 1, len(files))
    return images, errors


def heat_rgba(heat: np.ndarray, opacity: float) -> np.ndarray:
    """A blue-to-red colour map of a similarity map, transparent where undefined."""
    finite = np.isfinite(heat)
    lo, hi = (np.nanmin(heat), np.nanmax(heat)) if finite.any() else (0.0, 1.0)
    t = np.where(finite, (heat - lo) / max(hi - lo, 1e-6), 0.0)
    rgba = np.zeros((*heat.shape, 4), dtype=np.uint8)
    rgba[..., 0] = (255 * t).astype(np.uint8)
    rgba[..., 1] = (255 * (1 - np.abs(2 * t - 1)) * 0.8).astype(np.uint8)
    rgba[..., 2] = (255 * (1 - t)).astype(np.uint8)
    rgba[..., 3] = np.where(finite, int(255 * opacity), 0).astype(np.uint8)
    return rgba


class MainWindow(QtWidgets.QMainWindow):
    scored = QtCore.Signal(dict)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("MedFLIP Studio — research use only")
        self.setAcceptDrops(True)
        self.settings = Settings()
        self.images: list[Radiograph] = []
        self.current: int | None = None
        self.engine = None
        self._embeddings: dict[int, object] = {}
        self._banks: dict[str, object] = {}
        self._model_request = ""
        self._tasks: list[Task] = []
        self.last_scores: dict[str, float] = {}
        self.last_error = ""
        self._closed = False

        self.browser = Browser()
        self.viewer = ImageViewer()
        self.zero_shot = ZeroShotPanel()
        self.mask_view = MaskView()
        self.tags = TagsPanel()
        self.retrieval = RetrievalPanel()
        self.batch = BatchPanel()
        self.training = TrainingPanel()
        self.tabs = QtWidgets.QTabWidget()
        for widget, name in ((self.zero_shot, "Zero-shot"), (self.mask_view, "Mask sampling"),
                             (self.retrieval, "Retrieval"), (self.tags, "Tags"), (self.batch, "Batch"),
                             (self.training, "Training")):
            self.tabs.addTab(widget, name)
        splitter = QtWidgets.QSplitter()
        splitter.addWidget(self.browser)
        splitter.addWidget(self.viewer)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 5)
        splitter.setStretchFactor(2, 3)
        splitter.setSizes([260, 700, 420])
        self.setCentralWidget(splitter)

        self.model_picker = QtWidgets.QComboBox()
        self.model_picker.setMinimumWidth(220)
        self.model_picker.currentIndexChanged.connect(self._model_changed)
        toolbar = self.addToolBar("Model")
        toolbar.setMovable(False)
        toolbar.addWidget(QtWidgets.QLabel(" Model: "))
        toolbar.addWidget(self.model_picker)
        card = QtGui.QAction("Model card", self)
        card.triggered.connect(self.show_model_card)
        toolbar.addAction(card)
        self.cursor_label = QtWidgets.QLabel()
        notice = QtWidgets.QLabel(f"  {NOTICE}  ")
        notice.setStyleSheet("color: #f0b429; font-weight: bold;")
        self.statusBar().addPermanentWidget(self.cursor_label)
        self.statusBar().addPermanentWidget(notice)
        self.load_progress = QtWidgets.QProgressBar()
        self.load_progress.setMaximumWidth(180)
        self.load_progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.load_progress)
        self._menus()

        self.browser.image_selected.connect(self.show_image)
        self.viewer.cursor_info.connect(self.cursor_label.setText)
        self.zero_shot.score_requested.connect(self.score)
        self.zero_shot.heatmap_requested.connect(self.show_heatmap)
        self.retrieval.retrieve_requested.connect(self.retrieve)
        self.retrieval.search_requested.connect(self.search_images)
        self.retrieval.image_chosen.connect(self.browser.select_index)
        self.batch.folder_requested.connect(self.score_folder)
        self.training.model_exported.connect(self._model_added)
        self.training.message.connect(self.error)
        self.refresh_models()

    # --- menus and shortcuts --------------------------------------------------------------------------
    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_files = QtGui.QAction("&Open files…", self, shortcut=QtGui.QKeySequence.StandardKey.Open)
        open_files.triggered.connect(self._open_files)
        open_folder = QtGui.QAction("Open &folder…", self, shortcut="Ctrl+Shift+O")
        open_folder.triggered.connect(self._open_folder)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addActions([open_files, open_folder])
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        quit_action = QtGui.QAction("&Quit", self, shortcut=QtGui.QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        for text, key, slot in (("Next image", "Down", lambda: self.browser.step(1)),
                                ("Previous image", "Up", lambda: self.browser.step(-1)),
                                ("Next image", "PgDown", lambda: self.browser.step(1)),
                                ("Reset view", "R", self.viewer.fit),
                                ("Invert", "I", self.viewer.invert_box.toggle)):
            action = QtGui.QAction(text, self, shortcut=key)
            action.triggered.connect(slot)
            view_menu.addAction(action)
        for i in range(7):
            action = QtGui.QAction(f"W/L preset {i + 1}", self, shortcut=str(i + 1))
            action.triggered.connect(lambda _=False, i=i: self.viewer.preset.setCurrentIndex(i))
            self.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QtGui.QAction("&About MedFLIP Studio", self)
        about.triggered.connect(lambda: show_about(self))
        help_menu.addAction(about)
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.get("recent", []):
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))

    def _open_files(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "Open images", self.settings.get("last_dir", ""),
            "Images (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff DICOMDIR);;All files (*)")
        if files:
            self.open_paths(files)

    def _open_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open folder", self.settings.get("last_dir", ""))
        if folder:
            self.open_paths([folder])

    # --- drag and drop --------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # --- loading --------------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        for p in paths:
            self.settings.add_recent(p)
        self.settings.set("last_dir", str(Path(paths[0]).parent))
        self._fill_recent()
        self.load_progress.setVisible(True)
        self.load_progress.setValue(0)
        self.statusBar().showMessage("Loading…")
        self._run(Task(load_paths, list(paths), with_progress=True), self._loaded, self.error,
                  on_progress=self._progress)

    def _loaded(self, result: tuple[list[Radiograph], list[str]]) -> None:
        images, errors = result
        self.load_progress.setVisible(False)
        first_new = len(self.images)
        for rg in images:
            self.images.append(rg)
            self.browser.add(len(self.images) - 1, rg)
        if images:
            self.browser.select_index(first_new)
        if errors:
            self.error(errors[0] if len(errors) == 1 else f"{len(errors)} files could not be read; first: {errors[0]}")
        elif images:
            self.statusBar().showMessage(f"Loaded {len(images)} image(s).", 5000)

    def show_image(self, index: int) -> None:
        self.current = index
        rg = self.images[index]
        self.viewer.set_radiograph(rg)
        self.mask_view.set_radiograph(rg)
        self.tags.set_radiograph(rg)
        self.last_scores = {}
        if self.engine is not None and self.zero_shot.labels():
            self.zero_shot.request()
        if self.engine is not None and (self.retrieval.corpus in self._banks or
                                        (not self.retrieval.corpus and self.engine.bundle.has("sentence_bank.npz"))):
            self.retrieve(self.retrieval.k.value(), self.retrieval.corpus)

    # --- models ---------------------------------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        self.model_picker.blockSignals(True)
        self.model_picker.clear()
        for entry in list_models():
            self.model_picker.addItem(f"{entry.name} ({entry.source})", str(entry.path))
        extra = self.settings.get("extra_models", [])
        for path in extra:
            if Path(path, "manifest.json").is_file() and self.model_picker.findData(path) < 0:
                self.model_picker.addItem(f"{Path(path).name} (folder)", path)
        self.model_picker.blockSignals(False)
        if self.model_picker.count() == 0:
            self.zero_shot.status.setText("No model bundle installed: train one in the Training tab.")
            return
        wanted = select or self.settings.get("model")
        idx = self.model_picker.findData(wanted) if wanted else -1
        self.model_picker.setCurrentIndex(max(idx, 0))
        self._model_changed(self.model_picker.currentIndex())

    def use_model_folder(self, path: str) -> None:
        extra = [p for p in self.settings.get("extra_models", []) if p != path] + [path]
        self.settings.set("extra_models", extra)
        self.refresh_models(select=path)

    def _model_added(self, path: str) -> None:
        self.refresh_models(select=path)
        self.statusBar().showMessage(f"New model ready: {Path(path).name}", 8000)

    def _model_changed(self, index: int) -> None:
        """Load the chosen bundle in the background (hash check and ONNX sessions take a moment)."""
        path = self.model_picker.itemData(index)
        if not path:
            return
        from medflip_core.engine import Engine

        self.statusBar().showMessage(f"Loading model {Path(path).name}…")
        self._model_request = path  # only the latest choice may become the engine
        self._run(Task(Engine, path), lambda engine, p=path: self._engine_ready(engine, p), self._engine_failed)

    def _engine_ready(self, engine, path: str) -> None:
        if path != self._model_request:
            return
        self.engine = engine
        self.training.base_model = Path(path)
        self.settings.set("model", path)
        self._embeddings.clear()
        self._banks.clear()
        self.zero_shot.set_default_labels(engine.bundle.default_labels)
        model = engine.bundle.manifest["model"]
        self.mask_view.set_model_geometry(engine.pre, int(model["patch_size"]))
        self.statusBar().showMessage(f"Model {engine.bundle.name} on {engine.providers[0]}", 5000)
        if self.current is not None and self.zero_shot.labels():
            self.zero_shot.request()

    def _engine_failed(self, message: str) -> None:
        self.engine = None
        self.error(message)

    def show_model_card(self) -> None:
        if self.engine is None:
            self.error("No model loaded.")
            return
        box = QtWidgets.QDialog(self)
        box.setWindowTitle(f"Model card — {self.engine.bundle.name}")
        text = QtWidgets.QTextBrowser()
        text.setMarkdown(self.engine.bundle.model_card())
        layout = QtWidgets.QVBoxLayout(box)
        layout.addWidget(text)
        box.resize(700, 600)
        box.show()

    # --- inference (engine calls in worker threads) ---------------------------------------------------
    def _embedding(self, index: int):
        if index not in self._embeddings:
            self._embeddings[index] = self.engine.embed_images([self.images[index]])
        return self._embeddings[index]

    def score(self, labels: list[str], templates: list[str]) -> None:
        if self.engine is None or self.current is None:
            self.error("Open an image and choose a model first." if self.engine is None else "Open an image first.")
            return
        index, engine = self.current, self.engine

        def work():
            emb = self._embedding(index)
            return index, engine.classify(emb.embedding[0], labels, templates or None)

        self._run(Task(work), self._scores_ready, self.error)

    def _scores_ready(self, result) -> None:
        index, scores = result
        if index != self.current:
            return
        self.last_scores = scores
        self.zero_shot.show_scores(scores, self.engine.bundle.name, out_of_distribution(self.images[index].metadata))
        self.scored.emit(scores)
        self.zero_shot._heat_changed()

    def show_heatmap(self, label: str, opacity: float) -> None:
        if not label or self.engine is None or self.current is None:
            self.viewer.clear_overlay()
            return
        rg = self.images[self.current]
        emb = self._embedding(self.current)
        try:
            heat = self.engine.similarity_map(emb.patch_tokens[0], label)
        except MedflipError as exc:
            self.error(str(exc))
            return
        size = self.engine.pre.image_size
        scale, _, _, top, left = letterbox_geometry(*rg.pixels.shape, size)
        rect = QtCore.QRectF(-left / scale, -top / scale, size / scale, size / scale)
        self.viewer.set_overlay(heat_rgba(heat, opacity), rect)

    def retrieve(self, k: int, corpus: str) -> None:
        if self.engine is None or self.current is None:
            self.error("Open an image and choose a model first.")
            return
        index, engine = self.current, self.engine

        def work():
            bank = None
            if corpus:  # a user's corpus is embedded once per model and kept
                bank = self._banks.get(corpus) or self._banks.setdefault(corpus, engine.bank_from_corpus(corpus))
            return engine.retrieve(self._embedding(index).embedding[0], k, bank)

        self.statusBar().showMessage("Retrieving sentences…")
        self._run(Task(work), self._hits_ready, self.error)

    def _hits_ready(self, hits) -> None:
        self.retrieval.show_hits(hits)
        self.statusBar().showMessage(f"{len(hits)} sentences", 4000)

    def search_images(self, query: str) -> None:
        if self.engine is None or not self.images or not query.strip():
            return
        engine = self.engine

        def work():
            embs = np.concatenate([self._embedding(i).embedding for i in range(len(self.images))])
            return [(i, s, self.images[i].path.name) for i, s in engine.rank_images(query, embs)]

        self._run(Task(work), self.retrieval.show_ranking, self.error)

    def score_folder(self, folder: str) -> None:
        if self.engine is None:
            self.error("Choose a model first.")
            return
        engine, labels = self.engine, self.zero_shot.labels() or self.engine.bundle.default_labels

        def work(progress=None):
            rows = []
            files = iter_image_files(folder)
            for i, f in enumerate(files):
                try:
                    emb = engine.embed_images([load_image(f)]).embedding[0]
                    rows.append({"path": str(f), "scores": engine.classify(emb, labels)})
                except MedflipError as exc:
                    rows.append({"path": str(f), "error": str(exc)})
                if progress is not None:
                    progress(i + 1, len(files))
            return rows

        def done(rows: list[dict]) -> None:
            self.load_progress.setVisible(False)
            self.batch.show_results(labels, rows)

        self.load_progress.setVisible(True)
        self._run(Task(work, with_progress=True), done, self.error, on_progress=self._progress)

    # --- plumbing -------------------------------------------------------------------------------------
    def _progress(self, done: int, total: int) -> None:
        self.load_progress.setMaximum(total)
        self.load_progress.setValue(done)

    def _run(self, task: Task, on_done, on_failed, on_progress=None) -> None:
        self._tasks.append(task)

        def finished(result, cb=on_done):
            self._tasks.remove(task)
            if not self._closed:  # a result that arrives after the window closed has nowhere to go
                cb(result)

        def failed(message, cb=on_failed):
            self._tasks.remove(task)
            if not self._closed:
                cb(message)

        start(task, finished, failed, on_progress)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self._closed = True
        if self.training.process is not None:
            self.training.cancel()
            self.training.process.waitForFinished(30000)
        super().closeEvent(event)

    def busy(self) -> bool:
        return bool(self._tasks)

    def error(self, message: str) -> None:
        self.last_error = message
        self.load_progress.setVisible(False)
        self.statusBar().showMessage(message, 15000)
