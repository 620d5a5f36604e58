"""Report sentences that best match the image (bundled bank or a user corpus), and text-to-image search.

Both say when an image is out of the model's distribution (medflip_core.inference.ood): the sentences of a leg film are
the bank's nearest, not a reading of it, and a search lists such films after the in-distribution ones, marked."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from medflip_core.inference.ood import brief
from medflip_core.inference.retrieval import ImageHit, SentenceHits

OOD_HEADING = "Out of the model's distribution (their scores mean little):"
_WARN_STYLE = "color: #8a4b00; background: #fff4e0; border: 1px solid #e0b070; padding: 3px;"


class RetrievalPanel(QtWidgets.QWidget):
    retrieve_requested = QtCore.Signal(int, str)  # k, corpus path ("" = the model's sentence bank)
    search_requested = QtCore.Signal(str)
    image_chosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.corpus = ""
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
        self.sentences_warning = QtWidgets.QLabel()
        self.sentences_warning.setWordWrap(True)
        self.sentences_warning.setStyleSheet(_WARN_STYLE)
        self.sentences_warning.setVisible(False)
        self.sentences = QtWidgets.QListWidget()
        self.sentences.setWordWrap(True)
        self.query = QtWidgets.QLineEdit()
        self.query.setPlaceholderText("Search the loaded images by text, e.g. pleural effusion")
        self.query.returnPressed.connect(lambda: self.search_requested.emit(self.query.text()))
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
        layout.addLayout(top)
        layout.addWidget(self.sentences_warning)
        layout.addWidget(self.sentences, 2)
        layout.addWidget(QtWidgets.QLabel("<b>Text → loaded images</b>"))
        layout.addWidget(self.query)
        layout.addWidget(self.ranked, 1)

    def _chosen(self, item: QtWidgets.QListWidgetItem) -> None:
        index = item.data(QtCore.Qt.ItemDataRole.UserRole)
        if index is not None:  # the heading between the two groups is no image
            self.image_chosen.emit(index)

    def _choose(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Report corpus", "",
                                                        "Reports (*.tgz *.tar.gz *.xml *.csv *.txt);;All files (*)")
        if path:
            self.corpus = path
            self.source.setText(path)

    def _reset(self) -> None:
        self.corpus = ""
        self.source.setText("Sentence bank of the model")

    def request(self) -> None:
        """Ask for the k sentences closest to the current image, from the chosen corpus or the model's bank."""
        self.retrieve_requested.emit(self.k.value(), self.corpus)

    def show_hits(self, result: SentenceHits) -> None:
        """The sentences, and above them why they may not describe this image when it is out of distribution."""
        self.sentences.clear()
        for i, hit in enumerate(result.hits):
            self.sentences.addItem(f"{i + 1}. [{hit.score:.3f}] {hit.sentence}")
        if result.warnings:
            self.sentences_warning.setText(
                "⚠ Out of the model's distribution — " + "; ".join(result.warnings)
                + ". These are the bank's nearest sentences, not a reading of this image.")
        self.sentences_warning.setVisible(bool(result.warnings))

    def show_ranking(self, ranking: list[ImageHit]) -> None:
        """Images best first; out-of-distribution ones (listed last by the session) under a heading, each marked
        ⚠ with its reason, still clickable: the flag comes from metadata, which can be wrong."""
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
