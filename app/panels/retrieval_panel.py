"""Report sentences that best match the image (bundled bank or a user corpus), and text-to-image search.

Both say when an image is out of the model's distribution (medflip_core.inference.ood): the sentences of a leg film are
the bank's nearest, not a reading of it, and a search lists such films after the in-distribution ones, marked.

A user corpus is embedded in the background (the window's worker, medflip_core.session.prepare_corpus) with its
progress shown here; the results shown always come from the model loaded now: a model change clears them with a
sentence and the window asks again."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from medflip_core.inference.ood import brief
from medflip_core.inference.retrieval import ImageHit, SentenceHits

OOD_HEADING = "Out of the model's distribution (their scores may not hold):"
_WARN_STYLE = "color: #8a4b00; background: #fff4e0; border: 1px solid #e0b070; padding: 3px;"


class RetrievalPanel(QtWidgets.QWidget):
    retrieve_requested = QtCore.Signal(int, str)  # k, corpus path ("" = the model's sentence bank)
    search_requested = QtCore.Signal(str)
    image_chosen = QtCore.Signal(int)
    corpus_chosen = QtCore.Signal(str)  # a corpus to embed with the loaded model ("" = back to the bank)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.corpus = ""  # the chosen corpus ("" = the model's sentence bank)
        self.corpus_ready = False  # its sentences are embedded by the loaded model
        self._waiting = False  # sentences were asked for while the corpus was being embedded
        self.shown_query = ""  # the query whose ranking is listed
        self._ranking_said = ""  # what the ranking's line said when it was listed
        self.k = QtWidgets.QSpinBox()
        self.k.setRange(1, 50)
        self.k.setValue(8)
        self.source = QtWidgets.QLabel("Sentence bank of the model")
        choose = QtWidgets.QPushButton("Corpus…")
        choose.setToolTip("Use your own reports: an Open-i XML folder or .tgz, a CSV or a TXT file")
        choose.clicked.connect(self._choose)
        reset = QtWidgets.QPushButton("Bank")
        reset.setToolTip("Back to the model's own sentence bank")
        reset.clicked.connect(self._reset)
        go = QtWidgets.QPushButton("Find sentences")
        go.clicked.connect(self.request)
        self.corpus_progress = QtWidgets.QProgressBar()
        self.corpus_progress.setFormat("%v of %m sentences")
        self.corpus_progress.setVisible(False)
        self.corpus_status = QtWidgets.QLabel()  # the corpus being embedded, or what came of it
        self.corpus_status.setWordWrap(True)
        self.sentences_status = QtWidgets.QLabel()  # where the sentences listed come from, or why there are none
        self.sentences_status.setWordWrap(True)
        self.search_status = QtWidgets.QLabel()  # which model ranked the images listed, for which text
        self.search_status.setWordWrap(True)
        self.sentences_warning = QtWidgets.QLabel()
        self.sentences_warning.setWordWrap(True)
        self.sentences_warning.setStyleSheet(_WARN_STYLE)
        self.sentences_warning.setVisible(False)
        self.sentences = QtWidgets.QListWidget()
        self.sentences.setWordWrap(True)
        self.query = QtWidgets.QLineEdit()
        self.query.setPlaceholderText("Search the loaded images by text, e.g. pleural effusion")
        self.query.returnPressed.connect(self._search)
        self.ranked = QtWidgets.QListWidget()
        self.ranked.setWordWrap(True)  # a flagged film's reason is read whole, not scrolled to
        self.ranked.itemActivated.connect(self._chosen)
        self.ranked.itemClicked.connect(self._chosen)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Top"))
        top.addWidget(self.k)
        top.addWidget(go)
        src = QtWidgets.QHBoxLayout()
        src.addWidget(self.source, 1)
        src.addWidget(choose)
        src.addWidget(reset)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("<b>Image → report sentences</b>"))
        layout.addLayout(src)
        layout.addWidget(self.corpus_progress)
        layout.addWidget(self.corpus_status)
        layout.addLayout(top)
        layout.addWidget(self.sentences_status)
        layout.addWidget(self.sentences_warning)
        layout.addWidget(self.sentences, 2)
        layout.addWidget(QtWidgets.QLabel("<b>Text → loaded images</b>"))
        layout.addWidget(self.query)
        layout.addWidget(self.search_status)
        layout.addWidget(self.ranked, 1)
        for label in (self.corpus_status, self.sentences_status, self.search_status):
            label.setVisible(False)

    def _search(self) -> None:
        """Said at once (a GUI walk saw nothing for the ~20 s the first search embeds every loaded image)."""
        query = self.query.text().strip()
        if query:
            self._say(self.search_status, f"Ranking the loaded images for “{query}”… (the first search embeds "
                                          "each image once: seconds to a minute)")
        self.search_requested.emit(self.query.text())

    def search_failed(self, query: str) -> None:
        self._say(self.search_status, f"The search for “{query}” failed (the message above says why).")

    def _chosen(self, item: QtWidgets.QListWidgetItem) -> None:
        index = item.data(QtCore.Qt.ItemDataRole.UserRole)
        if index is not None:  # the heading between the two groups is no image
            self.image_chosen.emit(index)

    @staticmethod
    def _say(label: QtWidgets.QLabel, text: str) -> None:
        label.setText(text)
        label.setVisible(bool(text))

    def _choose(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Report corpus", "",
                                                        "Reports (*.tgz *.tar.gz *.xml *.csv *.txt);;All files (*)")
        if path:
            self.use_corpus(path)

    def use_corpus(self, path: str) -> None:
        """Sentences from this corpus from now on: the window embeds it in the background (corpus_chosen), and
        the panel shows its progress; sentences asked for meanwhile come when it is ready."""
        self.corpus, self.corpus_ready = path, False
        self._clear_sentences()  # they came from another source
        self._say(self.sentences_status, "")  # and so did the sentence naming them (a GUI walk saw it stale)
        self.source.setText(path)
        self._say(self.corpus_status, f"Reading the reports of {Path(path).name}…")
        self.corpus_progress.setRange(0, 0)  # busy until the reports are read and the sentences counted
        self.corpus_progress.setVisible(True)
        self.corpus_chosen.emit(path)

    def _reset(self) -> None:
        self._use_bank()
        self._say(self.corpus_status, "")
        self.corpus_chosen.emit("")
        if self._waiting:
            self.request()

    def _use_bank(self) -> None:
        """Sentences from the model's bank again (the corpus dropped by the user, or unusable)."""
        self.corpus, self.corpus_ready = "", False
        self._clear_sentences()
        self._say(self.sentences_status, "")
        self.source.setText("Sentence bank of the model")
        self.corpus_progress.setVisible(False)

    def _clear_sentences(self) -> None:
        self.sentences.clear()
        self.sentences_warning.setVisible(False)

    def show_corpus_progress(self, done: int, total: int) -> None:
        name = Path(self.corpus).name
        self._say(self.corpus_status, f"Embedding sentences: {done:,} of {total:,} ({name}, with the loaded model; "
                                      "the window stays usable meanwhile)")
        self.corpus_progress.setRange(0, total)
        self.corpus_progress.setValue(done)
        self.corpus_progress.setVisible(True)

    def corpus_waits_for_model(self) -> None:
        self.corpus_progress.setVisible(False)
        self._say(self.corpus_status, f"{Path(self.corpus).name}: its sentences are embedded once a model is "
                                      "loaded.")

    def corpus_embedded(self, sentences: int, available: int, model: str, seconds: float) -> None:
        """The chosen corpus is ready: say so, then give the sentences asked for while it was embedded."""
        self.corpus_ready = True
        self.corpus_progress.setVisible(False)
        cut = f" (the first {sentences:,} of its {available:,})" if available > sentences else ""
        self._say(self.corpus_status, f"{Path(self.corpus).name} is ready: {sentences:,} sentences{cut} embedded by "
                                      f"{model} in {seconds:.0f} s. Find sentences lists the closest to the image.")
        if self._waiting:
            self.request()

    def corpus_failed(self, message: str) -> None:
        """The corpus cannot be used: said here, and the model's bank is used again."""
        name = Path(self.corpus).name
        self._use_bank()
        self._say(self.corpus_status, f"{name} cannot be used: {message} Sentences come from the model's bank.")
        if self._waiting:
            self.request()

    def request(self) -> None:
        """Ask for the k sentences closest to the current image, from the chosen corpus or the model's bank; with a
        corpus still being embedded, they are asked for when it is ready."""
        if self.corpus and not self.corpus_ready:
            self._waiting = True
            self._say(self.sentences_status, f"The closest sentences of {Path(self.corpus).name} are listed when its "
                                             "sentences are embedded.")
            return
        self._waiting = False
        self.retrieve_requested.emit(self.k.value(), self.corpus)

    def model_changed(self, model: str | None, has_text: bool = True, has_bank: bool = True) -> str:
        """Another model (None: none) is loaded: the sentences and ranking of the previous one are cleared, with
        a sentence saying what comes next; a chosen corpus must be embedded again. Returns the query to search
        again with the new model ("" when there is none, or the model cannot embed text)."""
        self._clear_sentences()
        self.ranked.clear()
        self.corpus_ready = False
        if model is None:
            self._say(self.sentences_status, "No model is loaded: sentences and text search need one.")
            self._say(self.search_status, "")
            self.shown_query = ""
            return ""
        if self.corpus:
            where = f"{Path(self.corpus).name}, embedded again with {model}"
        elif has_bank:
            where = f"the sentence bank of {model}"
        else:
            where = ""
        self._say(self.sentences_status, f"Model {model}: sentences for the image shown come from {where}."
                  if where else f"{model} has no sentence bank: choose a report corpus (Corpus…) to find sentences.")
        query, self.shown_query = self.shown_query, ""
        if not query:
            self._say(self.search_status, "")
            return ""
        if not has_text:
            self._say(self.search_status, f"{model} has no text encoder, so it cannot search by text; the ranking "
                                          "of the previous model was cleared.")
            return ""
        self._say(self.search_status, f"Model changed to {model}: ranking the images for “{query}” again…")
        return query

    def show_hits(self, result: SentenceHits, model: str = "") -> None:
        """The sentences, and above them why they may not describe this image when it is out of distribution."""
        if model:
            where = Path(self.corpus).name if self.corpus else "its sentence bank"
            self._say(self.sentences_status, f"The closest sentences of {where}, by {model} (in brackets the "
                                             "image-sentence similarity): nearest sentences, not a reading of this "
                                             "image.")
        self.sentences.clear()
        for i, hit in enumerate(result.hits):
            self.sentences.addItem(f"{i + 1}. [{hit.score:.3f}] {hit.sentence}")
        if model and result.closeness():
            self._say(self.sentences_status, f"{self.sentences_status.text()} {result.closeness()}")
        if result.warnings:
            self.sentences_warning.setText(
                "⚠ Out of the model's distribution — " + "; ".join(result.warnings)
                + ". These are the bank's nearest sentences, not a reading of this image.")
        self.sentences_warning.setVisible(bool(result.warnings))

    def images_added(self, count: int) -> None:
        """Images opened after the ranking on screen: it leaves them out, and says so (a GUI walk read "1 images
        ranked" beside nine open films)."""
        if not self.shown_query or not self.ranked.count():
            return
        self._say(self.search_status, f"{self._ranking_said} — {count:,} image{'s' if count != 1 else ''} opened "
                                      "since, not in this ranking: search again to include them.")

    def show_ranking(self, ranking: list[ImageHit], query: str = "", model: str = "") -> None:
        """Images best first; out-of-distribution ones (listed last by the session) under a heading, each marked
        ⚠ with its reason, still clickable: the flag comes from metadata, which can be wrong."""
        self.shown_query = query
        if model:
            self._ranking_said = (f"{len(ranking)} image{'s' if len(ranking) != 1 else ''} ranked by {model} for "
                                  f"“{query}”.")
            self._say(self.search_status, self._ranking_said)
        self.ranked.clear()
        heading_shown = False
        for hit in ranking:
            if hit.out_of_distribution and not heading_shown:
                heading = QtWidgets.QListWidgetItem(OOD_HEADING)
                heading.setFlags(QtCore.Qt.ItemFlag.NoItemFlags)
                font = heading.font()
                font.setItalic(True)
                heading.setFont(font)
                self.ranked.addItem(heading)
                heading_shown = True
            text = f"[{hit.score:.3f}] {hit.name}"
            item = QtWidgets.QListWidgetItem(f"⚠ {text} — {brief(hit.warnings)}" if hit.out_of_distribution
                                             else text)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, hit.index)
            if hit.out_of_distribution:
                item.setToolTip("\n".join(hit.warnings))
                item.setForeground(QtGui.QColor("#8a4b00"))
            self.ranked.addItem(item)

    def ranked_images(self) -> list[int]:
        """The image indices in the order listed (the heading skipped)."""
        items = (self.ranked.item(r) for r in range(self.ranked.count()))
        return [i for i in (it.data(QtCore.Qt.ItemDataRole.UserRole) for it in items) if i is not None]
