"""The main window: browser | viewer | tool tabs, over a Qt-free Session (medflip_core.session).

Layout and wiring only: the session holds the images, the engine and the caches and does the work, in
worker threads; the panels show results through their public methods.

Why over 450 lines: this is the one place where every panel's request meets the session and the task runner,
and each handler is a few lines (hand the request to a worker, show its result or its error). Split further, the
handlers would live apart from the one set of tasks and images they share.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.labelling.workspace import LabellingWorkspace
from app.panels.batch_panel import BatchPanel
from app.panels.mask_view import MaskView
from app.panels.model_picker import ModelPicker
from app.panels.retrieval_panel import RetrievalPanel
from app.panels.tags_panel import TagsPanel
from app.panels.zero_shot_panel import ZeroShotPanel
from app.settings import Settings
from app.training import export_handover
from app.training.training_panel import TrainingPanel
from app.viewer.browser import Browser
from app.viewer.drop_open import DropToOpen, local_paths
from app.viewer.pixel_loader import PixelLoader
from app.viewer.viewer import ImageViewer
from app.window.about import NOTICE, show_model_card
from app.window.compact_tabs import compact
from app.window.menus import build_menus, fill_recent
from app.window.message_bar import MessageBar
from app.workers import Task, TaskRunner
from medflip_core.errors import ImageLoadError
from medflip_core.imaging.pixel_cache import default_cache
from medflip_core.inference.batch import describe_run
from medflip_core.inference.heatmap import ACTIVATION_CAVEAT, SIMILARITY_CAVEAT
from medflip_core.inference.validated_labels import validation_notes
from medflip_core.inference.zeroshot import outside_label_space, uncalibrated_warning
from medflip_core.labeler.prompts import model_prompts
from medflip_core.session import LoadResult, Session, load_paths

ERROR_ECHO_MS = 8000  # how long the status bar repeats an error the message bar keeps


class MainWindow(QtWidgets.QMainWindow):
    scored = QtCore.Signal(dict)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("MedFLIP Studio — research use only")
        self.setAcceptDrops(True)
        self.settings = Settings()
        self.session = Session()
        self.current: int | None = None
        self._model_request = ""
        self.tasks = TaskRunner()
        self.pixels = PixelLoader(self)  # reading and decoding in worker processes, off this thread
        self.pixels.ready.connect(self._pixels_ready)
        self._loads: list[Task] = []  # loads in flight (the Cancel button beside their progress stops them)
        self._corpus_task: Task | None = None  # the Retrieval tab's corpus being embedded (stopped by a newer one)
        self.last_load: LoadResult | None = None
        self._stop_batch = False
        self._mask_image = None  # the image the mask tab shows once it is the tab in front (_sync_mask_view)
        self.last_scores: dict[str, float] = {}
        self.last_prediction = None  # the classifier's Prediction for the current image, when it is one
        self.last_error = ""
        self._error_until = 0.0  # monotonic time until which the status bar echoes an error (nothing may replace it)
        self._build()
        self.recent_menu = build_menus(self)
        self._fill_recent()
        self._wire()
        self.refresh_models()
        self._pending_timer = QtCore.QTimer(self, interval=2000, timeout=self._check_pending_exports)
        self._check_pending_exports()
        self.close_question: QtWidgets.QMessageBox | None = None
        # offscreen (scripted runs, tests) nobody can answer a question: closing stops the job as before
        self.ask_before_closing = QtGui.QGuiApplication.platformName() != "offscreen"
        self._restore_session()

    # --- what is remembered between sessions (app/settings.py) ----------------------------------------------
    def _restore_session(self) -> None:
        """Typed labels, the training form and the splitters as left last time; an unfinished pre-training run is
        offered for resuming. The window's own size: `fit_to_screen`, called before it is shown."""
        labels = self.settings.get("zero_shot_labels")
        if isinstance(labels, str) and labels.strip():
            self.zero_shot.labels_edit.setPlainText(labels)
        self.training.form.restore(self.settings.get("training_form", {}))
        self.labelling.restore_form(self.settings.get("labelling_form", {}))
        for splitter, key in ((self.splitter, "main_splitter"), (self.training.split, "training_splitter_wide")):
            state = self.settings.get(key)
            if isinstance(state, str):
                before = splitter.sizes()
                splitter.restoreState(QtCore.QByteArray.fromBase64(state.encode("ascii")))
                if splitter is self.splitter and splitter.sizes()[1] == 0:  # never open with the image folded away
                    splitter.setSizes(before)
                elif splitter is self.training.split:
                    self.training.keep_split_sizes()  # the user's divider, not the first-show default
        unfinished = self.settings.get("unfinished_run", "")
        if isinstance(unfinished, str) and unfinished:
            why = self.settings.get("unfinished_run_why", "closed")
            self.training.offer_resume(unfinished, why if why in ("closed", "cancelled", "stopped") else "stopped")

    def fit_to_screen(self, size: tuple[int, int] | None = None) -> None:
        """The window's first size: `size` exactly when given (--size); else the geometry saved at the last close if it
        still fits a screen, else 1400x860 shrunk to the screen's available area (never under the window's minimum)."""
        saved = self.settings.get("window_geometry")
        if size is None and isinstance(saved, str) and self.restoreGeometry(
                QtCore.QByteArray.fromBase64(saved.encode("ascii"))):
            screen = self.screen().availableGeometry() if self.screen() else None
            if screen is None or screen.contains(self.frameGeometry().center()):
                self.resize(self.size().boundedTo(screen.size()) if screen else self.size())
                return
        if size is not None:  # asked for in so many pixels (--size, a screenshot of a given size): as asked
            self.resize(*size)
            return
        width, height = 1400, 860
        screen = (self.screen() or QtGui.QGuiApplication.primaryScreen())
        if screen is not None:
            area = screen.availableGeometry()
            frame, border = 40, 8  # a window manager's title bar and borders come on top of the client area
            width, height = min(width, area.width() - border), min(height, area.height() - frame)
            self.resize(max(width, self.minimumSizeHint().width()), max(height, self.minimumSizeHint().height()))
            self.move(area.x() + (area.width() - self.width()) // 2,
                      area.y() + max((area.height() - frame - self.height()) // 2, 0))
        else:
            self.resize(width, height)

    def _save_session(self) -> None:
        self.settings.set("window_geometry", bytes(self.saveGeometry().toBase64()).decode("ascii"))
        # the Labelling and Training tabs fold the browser and viewer while in front
        outside = self.labelling.sizes_outside() or self.training.sizes_outside()
        current = self.splitter.sizes()
        if outside is not None:
            self.splitter.setSizes(outside)
        self.settings.set("main_splitter", bytes(self.splitter.saveState().toBase64()).decode("ascii"))
        if outside is not None:
            self.splitter.setSizes(current)
        self.settings.set("training_splitter_wide", bytes(self.training.split.saveState().toBase64()).decode("ascii"))
        self.settings.set("zero_shot_labels", self.zero_shot.labels_edit.toPlainText())
        self.settings.set("labelling_form", self.labelling.form_state())

    # --- state the scripted runs and tests read --------------------------------------------------------
    @property
    def images(self) -> list:
        return self.session.images

    @property
    def engine(self):
        return self.session.engine

    # --- layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.browser = Browser()
        self.viewer = ImageViewer()
        self.zero_shot = ZeroShotPanel()
        self.zero_shot.set_label_mode(str(self.settings.get("zero_shot_mode", "automatic")))  # as left last time
        self.zero_shot.label_mode_box.currentIndexChanged.connect(
            lambda: self.settings.set("zero_shot_mode", self.zero_shot.label_mode()))
        self.mask_view = MaskView()
        self.tags = TagsPanel()
        self.retrieval = RetrievalPanel()
        self.batch = BatchPanel(self.settings)
        self.training = TrainingPanel()
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setUsesScrollButtons(False)  # every tab visible, no hidden ones behind arrows
        for widget, name in ((self.zero_shot, "Zero-shot"), (self.mask_view, "Mask sampling"),
                             (self.retrieval, "Retrieval"), (self.tags, "Tags"), (self.batch, "Batch"),
                             (self.training, "Training")):
            self.tabs.addTab(widget, name)
        self.labelling = LabellingWorkspace(lambda: self.session.engine)
        self.tabs.addTab(self.labelling, "Labelling")
        self.labelling.classifier_ready.connect(self._classifier_added)
        self.labelling.message.connect(lambda m: self.error(m, source="labelling"))
        self.labelling.resolved.connect(lambda: self.messages.clear_from("labelling"))
        self.labelling.finetune_requested.connect(lambda csv, root: (self.training.form.fill_finetune(csv, root),
                                                                     self.tabs.setCurrentWidget(self.training)))
        self._tab_style = compact(self.tabs.tabBar())
        self.tabs.setMinimumWidth(self.tabs.tabBar().sizeHint().width() + 4)
        # the tabs sit at the panel's right edge, the window's: when Training or Labelling take the whole width, the
        # tab bar stays under the mouse instead of jumping to the window's left edge (a GUI walk)
        self.tabs.setObjectName("main_tabs")  # the rule is for this tab bar only, not the tabs inside a tab
        self.tabs.setStyleSheet("QTabWidget#main_tabs::tab-bar { alignment: right; }")
        self.splitter = splitter = QtWidgets.QSplitter()
        splitter.addWidget(self.browser)
        splitter.addWidget(self.viewer)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 5)
        splitter.setStretchFactor(2, 3)
        splitter.setSizes([256, 476, 540])  # at 1280 px: whole NIH file names, the film, every zero-shot bar
        self.messages = MessageBar()
        central = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(central)
        column.setContentsMargins(4, 4, 4, 0)
        column.addWidget(self.messages)
        column.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.model_picker = ModelPicker(self.settings)
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
        self.device_label = QtWidgets.QLabel()  # where inference runs; the tooltip says why
        self.statusBar().addPermanentWidget(self.cursor_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().addPermanentWidget(notice)
        self.load_progress = QtWidgets.QProgressBar()
        self.load_progress.setMaximumWidth(180)
        self.load_progress.setVisible(False)
        self.load_progress.setFormat("%v of %m")
        self.statusBar().addPermanentWidget(self.load_progress)
        self.load_cancel = QtWidgets.QPushButton("Cancel")
        self.load_cancel.setToolTip("Stop opening files (the images read so far stay open)")
        self.load_cancel.clicked.connect(self.cancel_load)
        self.load_cancel.setVisible(False)
        self.statusBar().addPermanentWidget(self.load_cancel)
        default_cache().set_limit_mb(self.settings.pixel_cache_mb())
        self.drops = DropToOpen(self.open_paths, self)
        self.drops.watch_text_boxes(self)

    def _tab_changed(self) -> None:
        """A heat-map belongs to the Zero-shot tab: elsewhere (e.g. beside the mask sampling) it would read as a
        mask or as anatomy, so leaving the tab takes it off the image; the label chosen stays, and coming back
        draws it again (a GUI walk found the choice forgotten)."""
        if self.zero_shot.heat_label.currentIndex() != 0:
            if self.tabs.currentWidget() is self.zero_shot:
                self.zero_shot.refresh_heat_map()
            else:
                self.viewer.clear_overlay()
        self._sync_mask_view()

    def _sync_mask_view(self) -> None:
        """The mask tab preprocesses its image (40-100 ms on the GUI thread): only while it is the tab shown."""
        if self.mask_view.radiograph is self._mask_image:
            return
        if self.tabs.currentWidget() is self.mask_view:
            self.mask_view.set_radiograph(self._mask_image)
        elif self.mask_view.radiograph is not None:  # hidden: let go of the old image (a model load would redo it)
            self.mask_view.set_radiograph(None)

    def _wire(self) -> None:
        self.tabs.currentChanged.connect(self._tab_changed)
        self.model_picker.model_chosen.connect(self._load_model)
        self.browser.image_selected.connect(self.show_image)
        self.viewer.cursor_info.connect(self.cursor_label.setText)
        self.zero_shot.score_requested.connect(self.score)
        self.zero_shot.classify_requested.connect(self.classify)
        self.zero_shot.heatmap_requested.connect(self.show_heatmap)
        self.retrieval.retrieve_requested.connect(self.retrieve)
        self.retrieval.search_requested.connect(self.search_images)
        self.retrieval.corpus_chosen.connect(self._corpus_chosen)
        self.retrieval.image_chosen.connect(self.browser.select_index)
        self.tags.reveal_changed.connect(self.browser.set_reveal_patient)
        self.batch.folder_requested.connect(self.score_folder)
        self.batch.cancel_requested.connect(self._cancel_batch)
        self.batch.film_requested.connect(self._show_file)
        self.training.model_exported.connect(self._model_added)
        self.training.classifier_ready.connect(self._classifier_added)
        self.training.message.connect(lambda m: self.error(m, source="training"))
        self.training.resolved.connect(lambda: self.messages.clear_from("training"))

    def _fill_recent(self) -> None:
        fill_recent(self.recent_menu, self.settings, self.open_paths)

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # --- loading -----------------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        """Open files/folders in the background: images reach the browser in chunks as they are read (the first
        one on screen at once), progress reads `n of N` files, Cancel or closing the window stops it."""
        paths = list(paths)
        self.settings.set("last_dir", str(Path(paths[0]).parent))
        self.load_progress.setVisible(True)
        self.load_progress.setMaximum(0)  # busy until the files are counted: never "0 of 100" for 1,000 files
        self.load_progress.setValue(0)
        self.load_cancel.setVisible(True)
        self.statusBar().showMessage("Loading…")
        opened: dict[str, list[int]] = {"new": [], "repeated": []}
        task = Task(load_paths, paths, with_progress=True, stoppable=True, partial="on_images",
                    reader=self.pixels.opener)
        self._loads.append(task)

        def failed(message: str) -> None:
            self._load_ended(task)
            self.error(message, source="load")  # a later load that opens fine takes it away (a GUI walk)

        self.tasks.run(task, lambda r: self._loaded(r, paths, opened, task), failed, self._progress,
                       on_partial=lambda images: self._images_read(images, opened))

    def _images_read(self, images: list, opened: dict[str, list[int]]) -> None:
        """A chunk of a load: into the session and the browser; the load's first image is shown at once."""
        first = not opened["new"] and not opened["repeated"]
        new, repeated = self.session.add_images(images)
        opened["new"] += new
        opened["repeated"] += repeated
        self.browser.add_many([(i, self.session.images[i]) for i in new])
        if first and (new or repeated):
            self.browser.select_index(new[0] if new else repeated[0])
        elif self.current is not None and new:  # the image after the one on screen may have just arrived
            self.pixels.prefetch(self._following(self.current))

    def cancel_load(self) -> None:
        for task in self._loads:
            task.cancel()

    def _load_ended(self, task: Task) -> None:
        if task in self._loads:
            self._loads.remove(task)
        if not self._loads:
            self.load_progress.setVisible(False)
            self.load_cancel.setVisible(False)

    def _loaded(self, result: LoadResult, paths: list[str], opened: dict[str, list[int]], task: Task) -> None:
        self._load_ended(task)
        self.last_load = result  # what the last load read, skipped and merged (scripted runs and tests read it)
        for path in result.failed_paths:  # the Recent menu keeps what opened, and forgets what did not
            self.settings.remove_recent(path)
        kept = [p for p in paths if p not in result.failed_paths]
        if kept:
            self.settings.add_recent(kept)  # one entry per drop, however many files it held
        self._fill_recent()
        new, repeated = opened["new"], opened["repeated"]
        duplicates = result.duplicate_message()
        if result.errors:
            n = len(result.errors)
            details = "\n".join(result.errors + ([duplicates, result.duplicate_details()] if duplicates else []))
            self.error(result.errors[0] if n == 1 else f"{n} files could not be read.", details, source="load")
        elif duplicates:
            self.messages.show_message(duplicates, result.duplicate_details(), source="load")
        else:
            self.messages.clear_from("load")
        if result.cancelled:
            self.statusBar().showMessage(f"Loading cancelled after {result.done:,} of {result.total:,} files: "
                                         f"{len(new):,} image(s) opened.", 8000)
        elif new:
            self.statusBar().showMessage(f"Loaded {len(new):,} image(s).", 5000)
        elif repeated:
            self.statusBar().showMessage("Already open.", 5000)
        if new:
            self.retrieval.images_added(len(new))

    def _show_file(self, path: str) -> None:
        """A file's image on screen: selected if it is open (no second read, no Recent entry), else opened."""
        index = next((i for i, rg in enumerate(self.session.images) if str(rg.path) == path), None)
        if index is None:
            self.open_paths([path])
        else:
            self.browser.select_index(index)

    def show_image(self, index: int) -> None:
        """Show an image; its pixels not in the cache are decoded in a worker process (its thumbnail scaled up
        meanwhile), then the next image in the browser is decoded ahead."""
        previous, self.current = self.current, index
        rg = self.session.images[index]
        if previous != index:  # the bars on screen, if any, are another image's
            self.zero_shot.image_changed(rg.path.name)
        if not rg.is_decoded():
            self.viewer.show_preview(rg)
            self._mask_image = None
            self._sync_mask_view()
            self.tags.set_radiograph(rg)
            self.last_scores = {}
            self.pixels.request(rg, self._following(index))  # -> _pixels_ready, for the last image chosen
            return
        self.pixels.shown(self._following(index))
        self._show_decoded(rg)

    def _following(self, index: int) -> list:
        return [self.session.images[i] for i in self.browser.following(index)]

    def _pixels_ready(self, rg, error: str) -> None:
        if self.tasks.closed or self.current is None or self.session.images[self.current] is not rg:
            return  # another image was chosen meanwhile: its own decode shows it
        if error:
            self.viewer.preview_failed()
            self.error(error)
            self.zero_shot.show_error(f"{rg.path.name} could not be read, so it has no scores.")  # not "Scoring…"
        else:
            self._show_decoded(rg)

    def _show_decoded(self, rg) -> None:
        try:
            rg.arrays()  # decoded on demand into the bounded pixel cache (at once if it is there)
        except ImageLoadError as exc:  # the file went away or changed since it was opened
            self.error(str(exc))
            self.zero_shot.show_error(f"{rg.path.name} could not be read, so it has no scores.")
            return
        self.viewer.set_radiograph(rg)
        self._mask_image = rg
        self._sync_mask_view()
        self.tags.set_radiograph(rg)
        self.last_scores = {}
        self._refresh_results()

    def _refresh_results(self) -> None:
        """Scores and sentences for the current image, as soon as there is both an image and a model."""
        if self.engine is None or self.current is None:
            return
        if self.zero_shot.classifier_mode() or self.zero_shot.labels():
            self.zero_shot.request()
        if self.session.can_retrieve(self.retrieval.corpus):
            self.retrieval.request()

    # --- models ------------------------------------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        if not self.model_picker.refresh(select):
            self.error("No model bundle is installed: train one in the Training tab.")

    def use_model_folder(self, path: str) -> None:
        """A model folder the user named (--model): used if it is a bundle, otherwise a clear error."""
        problem = self.model_picker.add_folder(path)
        if problem:
            self.error(problem)

    def _model_added(self, path: str) -> None:
        """A new model from training appears in the picker; the user decides whether to use it."""
        self.refresh_models()
        self.statusBar().showMessage(f"New model ready: {Path(path).name}. Choose it in the Model picker.", 15000)

    def _classifier_added(self, path: str) -> None:
        """The user's own fine-tuning job finished: its classifier appears in the picker and is selected."""
        self.refresh_models(select=path)
        self.statusBar().showMessage(f"Classifier ready and selected: {Path(path).name}.", 15000)

    def _load_model(self, path: str) -> None:
        """Load the chosen bundle in the background (hash check and ONNX sessions take a moment)."""
        from medflip_core.inference.engine import Engine

        self.statusBar().showMessage(f"Loading model {Path(path).name}…")
        self._model_request = path  # only the latest choice may become the engine
        self._run(Task(Engine, path), lambda engine, p=path: self._engine_ready(engine, p), self._engine_failed)

    def _engine_ready(self, engine, path: str) -> None:
        if path != self._model_request:
            return
        self.session.set_engine(engine)
        requery = self._retrieval_model_changed(engine)
        self.training.set_base_model(path)
        self.settings.set("model", path)
        self.messages.clear_from("model")
        self.zero_shot.set_default_labels(engine.bundle.default_labels)
        self.zero_shot.set_model_prompts(model_prompts(engine.bundle.manifest))  # shown as they are used
        clf = engine.classifier
        self.zero_shot.set_classifier(engine.bundle.name if clf is not None else "", zero_shot=engine.has_text,
                                      probability_words=clf.probability_words() if clf is not None else "")
        self.training.show_classifier(path if engine.classifier is not None else "")
        self.mask_view.set_engine(engine)
        device = engine.device
        self.device_label.setText(f" Inference: {device.label} ")
        self.device_label.setToolTip(device.note)
        if time.monotonic() < self._error_until:
            pass  # a model finishing loading does not push a fresh error off the status bar (the device label says it)
        elif device.driver and not device.on_gpu:  # a GPU user who gets the CPU is told why, once per model
            self.statusBar().showMessage(f"Model {engine.bundle.name}. {device.note}", 20000)
        else:  # the why of the device is the device label's tooltip: the status bar keeps a line that fits
            self.statusBar().showMessage(f"Model {engine.bundle.name} ready ({device.label}).", 5000)
        self._refresh_results()
        if self.retrieval.corpus:  # the corpus's sentences, embedded again with this model, with progress
            self._prepare_corpus(self.retrieval.corpus)
        if requery and self.session.images:
            self.search_images(requery)

    def _engine_failed(self, message: str) -> None:
        self.session.set_engine(None)
        self._retrieval_model_changed(None)
        self.error(message, source="model")

    def _retrieval_model_changed(self, engine) -> str:
        """The previous model's sentences and ranking are never shown as this one's: results still on their way
        are dropped, a corpus being embedded is stopped, the lists are cleared with a sentence. Returns the query
        to rank the images for again."""
        for kind in ("retrieve", "search"):
            self.tasks.invalidate(kind)
        self._stop_corpus_embedding()
        if engine is None:
            return self.retrieval.model_changed(None)
        return self.retrieval.model_changed(engine.bundle.name, has_text=engine.has_text,
                                            has_bank=self.session.can_retrieve(""))

    def show_model_card(self) -> None:
        if self.engine is None:
            self.error("No model loaded.")
            return
        show_model_card(self, self.engine.bundle.name, self.engine.bundle.model_card())

    # --- inference: session operations in worker threads ------------------------------------------------
    def score(self, labels: list[str], templates: list[str]) -> None:
        if self.current is None:
            self.zero_shot.show_error("Open an image first.")
            return
        index, mode = self.current, self.zero_shot.label_mode()
        self._run(Task(lambda: (index, self.session.zero_shot(index, labels, templates, mode))), self._scores_ready,
                  self.zero_shot.show_error)

    def _scores_ready(self, result) -> None:
        index, zero_shot = result
        if index != self.current:
            return
        scores = {label: float(p) for label, p in zip(zero_shot.labels, zero_shot.probs[0], strict=True)}
        self.last_scores = scores
        self.last_prediction = None
        self.zero_shot.show_scores(scores, self.engine.bundle.name,
                                   self.session.warnings(index) + zero_shot.contradictions(),
                                   zero_shot.explanation(), outside_label_space(zero_shot.labels),
                                   validation_notes(self.engine.bundle.manifest, zero_shot.labels), zero_shot.alike,
                                   uncalibrated_warning(zero_shot.labels, zero_shot.kind), zero_shot.prompts)
        self.scored.emit(scores)
        self.zero_shot.refresh_heat_map()

    def classify(self) -> None:
        """The selected classifier's own classes for the current image."""
        if self.current is None:
            self.zero_shot.show_error("Open an image first.")
            return
        index = self.current
        self._run(Task(lambda: (index, self.session.predict(index))), self._prediction_ready,
                  self.zero_shot.show_error)

    def _prediction_ready(self, result) -> None:
        index, pred = result
        if index != self.current:
            return
        self.last_scores = dict(pred.probabilities)
        self.last_prediction = pred
        self.zero_shot.show_prediction(pred.probabilities, pred.thresholds, pred.multi_label,
                                       self.engine.bundle.name, self.session.warnings(index), pred.decisions,
                                       pred.rule, self.engine.classifier.probability_words())
        self.scored.emit(self.last_scores)
        self.zero_shot.refresh_heat_map()

    def show_heatmap(self, label: str, opacity: float) -> None:
        if not label or self.engine is None or self.current is None:
            self.viewer.clear_overlay()
            return
        index = self.current
        kind = "class activation" if self.zero_shot.classifier_mode() else "patch-text similarity"
        self._run(Task(self.session.heat_map, index, label, opacity, self.zero_shot.classifier_mode()),
                  lambda overlay: self._heatmap_ready(index, overlay, f"{label}: heat-map ({kind})"), self.error)

    def _heatmap_ready(self, index: int, overlay, caption: str = "") -> None:
        if index != self.current or self.tabs.currentWidget() is not self.zero_shot:
            return
        h, w = self.session.images[index].pixels.shape
        activation = self.zero_shot.classifier_mode()
        about = ACTIVATION_CAVEAT if activation else SIMILARITY_CAVEAT
        self.viewer.set_overlay(overlay.rgba, QtCore.QRectF(0, 0, w, h), caption, values=overlay.values,
                                value_name="contribution" if activation else "cosine",
                                scale=(overlay.low, overlay.high), about=about)

    def retrieve(self, k: int, corpus: str) -> None:
        if self.current is None:
            self.error("Open an image first.")
            return
        model = self.engine.bundle.name if self.engine is not None else ""
        self._run(Task(self.session.retrieve, self.current, k, corpus),
                  lambda hits: self._hits_ready(hits, model, corpus),
                  lambda m: self.error(m, source="retrieval"), latest="retrieve")

    def _hits_ready(self, hits, model: str = "", corpus: str = "") -> None:
        if corpus != self.retrieval.corpus:  # asked for from another source: the current one's follow
            return
        self.retrieval.show_hits(hits, model)
        self.messages.clear_from("retrieval")  # the count is in the Retrieval tab: the status bar keeps what matters

    def search_images(self, query: str) -> None:
        model = self.engine.bundle.name if self.engine is not None else ""  # the session's model ranks them
        def failed(message: str) -> None:
            self.retrieval.search_failed(query)  # "Ranking …" does not stay on screen
            self.error(message)

        self._run(Task(self.session.search, query, self.pixels.opener),
                  lambda ranking: self.retrieval.show_ranking(ranking, query, model), failed, latest="search")

    def _corpus_chosen(self, corpus: str) -> None:
        """The Retrieval tab's corpus changed: the one being embedded (if any) stops, the new one is embedded."""
        self._stop_corpus_embedding()
        if not corpus:
            return
        if self.engine is None:
            self.retrieval.corpus_waits_for_model()  # _engine_ready embeds it
            return
        self._prepare_corpus(corpus)

    def _stop_corpus_embedding(self) -> None:
        """The corpus being embedded (if any) stops, and nothing it reports is delivered any more."""
        self.tasks.invalidate("corpus")
        if self._corpus_task is not None:
            self._corpus_task.cancel()
            self._corpus_task = None

    def _prepare_corpus(self, corpus: str) -> None:
        """Embed a report corpus in a worker with the loaded model, its progress in the Retrieval tab (the IU
        archive takes about a minute on a laptop CPU); the sentences asked for meanwhile follow."""
        model, started = self.engine.bundle.name, time.monotonic()
        task = Task(self.session.prepare_corpus, corpus, with_progress=True, stoppable=True)
        self._corpus_task = task

        def done(bank) -> None:
            self._corpus_task = None
            if bank is not None:  # None: stopped for a newer corpus or model
                self.retrieval.corpus_embedded(len(bank), bank.available, model, time.monotonic() - started)

        def failed(message: str) -> None:
            self._corpus_task = None
            self.retrieval.corpus_failed(message)
            self.error(message, source="retrieval")

        self._run(task, done, failed, on_progress=self.retrieval.show_corpus_progress, latest="corpus")

    def score_folder(self, folder: str) -> None:
        classifier = self.zero_shot.classifier_mode() and self.session.has_classifier
        labels = self.zero_shot.labels() or (self.engine.bundle.default_labels if self.engine else [])
        if classifier:
            labels = list(self.engine.classifier.classes)
        self._stop_batch = False
        self.batch.set_running(folder)
        self.load_progress.setMaximum(0)  # busy until the folder's files are counted, never a stale 100 %
        self.load_progress.setVisible(True)
        templates = None if classifier else self.zero_shot.templates()  # as the Zero-shot tab scores one image
        run = describe_run(self.engine, labels, templates, classifier) if self.engine is not None else None

        def done(rows: list[dict]) -> None:
            self.load_progress.setVisible(False)
            self.batch.show_results(labels, rows, cancelled=self._stop_batch, run=run, folder=folder)

        def failed(message: str) -> None:
            self.load_progress.setVisible(False)
            self.batch.show_failure(message)

        task = Task(self.session.score_folder, folder, labels, templates, with_progress=True,
                    should_stop=lambda: self._stop_batch, classifier=classifier, mode=self.zero_shot.label_mode(),
                    reader=self.pixels.opener)  # decoded in the worker processes: the window never waits on one
        self._run(task, done, failed, on_progress=self._progress)

    def _cancel_batch(self) -> None:
        self._stop_batch = True

    # --- exports that outlive the window -----------------------------------------------------------------
    def _check_pending_exports(self) -> None:
        ready, running, failed = export_handover.check_pending(self.settings)
        for out in ready:
            self._model_added(out)
        for out in failed:
            self.error(f"The export of {Path(out).name} did not finish; export the run again from the "
                       "Training tab or with medflip export.")
        if running and not self._pending_timer.isActive():
            self._pending_timer.start()
        elif not running:
            self._pending_timer.stop()

    # --- plumbing ----------------------------------------------------------------------------------------
    def _progress(self, done: int, total: int) -> None:
        self.load_progress.setMaximum(total)
        self.load_progress.setValue(done)

    def _run(self, task: Task, on_done, on_failed, on_progress=None, latest: str = "") -> None:
        self.tasks.run(task, on_done, on_failed, on_progress, latest)

    def confirm_close(self) -> bool:
        """A running training job is stopped by closing: the user is asked first (Cancel keeps everything)."""
        job = self.training.job_running()
        if not job or not self.ask_before_closing:
            return True
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Question, "Stop training?",
                                    f"A {job} is running. Closing stops it after the current step and keeps a "
                                    "checkpoint; the next start offers to resume it.", parent=self)
        stop = box.addButton("Stop and close", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        self.close_question = box  # tests answer it
        box.exec()
        self.close_question = None
        return box.clickedButton() is stop

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self.confirm_close():
            event.ignore()
            return
        self._save_session()
        self.tasks.closed = True  # a result that arrives after the window closed has nowhere to go
        self.pixels.close()
        self._pending_timer.stop()
        self.training.shut_down(self.settings)
        super().closeEvent(event)

    def busy(self) -> bool:
        return self.tasks.busy() or self.pixels.pending()

    def error(self, message: str, details: str = "", source: str = "") -> None:
        """A problem the user must see: the persistent message bar (short sentence, details on demand)."""
        self.last_error = message
        self.load_progress.setVisible(False)
        self.messages.show_message(message, details, source)
        self.statusBar().showMessage(self.messages.summary.text(), ERROR_ECHO_MS)
        self._error_until = time.monotonic() + ERROR_ECHO_MS / 1000
