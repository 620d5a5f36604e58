"""Report sentences that best match the image (bundled bank or a user corpus), and text-to-image search."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


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
        self.sentences = QtWidgets.QListWidget()
        self.sentences.setWordWrap(True)
        self.query = QtWidgets.QLineEdit()
        self.query.setPlaceholderText("Search the loaded images by text, e.g. pleural effusion")
        self.query.returnPressed.connect(lambda: self.search_requested.emit(self.query.text()))
        self.ranked = QtWidgets.QListWidget()
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
        layout.addWidget(self.sentences, 2)
        layout.addWidget(QtWidgets.QLabel("<b>Text → loaded images</b>"))
        layout.addWidget(self.query)
        layout.addWidget(self.ranked, 1)

    def _chosen(self, item: QtWidgets.QListWidgetItem) -> None:
        self.image_chosen.emit(item.data(QtCore.Qt.ItemDataRole.UserRole))

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

    def show_hits(self, hits: list) -> None:
        self.sentences.clear()
        for i, hit in enumerate(hits):
            self.sentences.addItem(f"{i + 1}. [{hit.score:.3f}] {hit.sentence}")

    def show_ranking(self, ranking: list[tuple[int, float, str]]) -> None:
        self.ranked.clear()
        for index, score, name in ranking:
            item = QtWidgets.QListWidgetItem(f"[{score:.3f}] {name}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, index)
            self.ranked.addItem(item)
