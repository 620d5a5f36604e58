"""The About box: version, the research-use notice, data licences."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medflip_core import __version__

NOTICE = "Research use only — not for diagnosis or any clinical decision."

ABOUT_HTML = f"""
<h2>MedFLIP Studio {__version__}</h2>
<p><b>{NOTICE}</b></p>
<p>Fast medical vision-language pre-training with masked image patches (MedFLIP, Li et al.,
arXiv 2403.04626), zero-shot label scoring and report-sentence retrieval for radiographs.</p>
<p>Data behind the bundled model:<br>
Kermany et al., pediatric chest X-rays (Mendeley Data v2, 2018): CC BY 4.0.<br>
Indiana University Chest X-ray Collection reports (Open-i; Demner-Fushman et al., JAMIA 2016):
CC BY-NC-ND 4.0, shipped unmodified and read at run time.<br>
NIH ChestX-ray14 adult chest X-rays (NIH Clinical Center; Wang et al., "ChestX-ray8", CVPR 2017): use unrestricted
by the NIH Clinical Center, which we acknowledge.<br>
TBX11K adult tuberculosis chest X-rays (Liu et al., "Rethinking Computer-aided Tuberculosis Diagnosis", CVPR
2020; research use): images only, without their labels, for the reconstruction (masked image modelling) term.<br>
Text tower: sentence-transformers all-MiniLM-L6-v2 (Apache-2.0).</p>
"""


KEYS_HTML = """
<h3>Viewer</h3>
<p>Wheel: zoom &nbsp; Left-drag: pan &nbsp; <b>Right-drag: window/level</b> (horizontal: width, vertical: level)<br>
1 file window (DICOM or percentiles) &nbsp; 2 auto (percentiles) &nbsp; 3 full range &nbsp; 4-7 chest presets
(in the tool bar's list)<br>
I invert &nbsp; F or R fit &nbsp; Down / Page Down next image &nbsp; Up / Page Up previous image</p>
<h3>Labelling tab</h3>
<p>1-9 the answer buttons (findings: toggle, then Enter confirms) &nbsp; S skip &nbsp; U undo &nbsp; B back</p>
<h3>Window</h3>
<p>Ctrl+Tab / Ctrl+Shift+Tab (or Ctrl+Page Down / Up): next / previous tab (the innermost tabs around the
focus) &nbsp; Ctrl+O open files &nbsp; Ctrl+Shift+O open a folder &nbsp; F1 this list &nbsp; Ctrl+Q quit<br>
Files and folders dropped anywhere on the window open them (on a text box too).</p>
"""


def show_keys(parent: QtWidgets.QWidget) -> None:
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("Keyboard and mouse")
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)
    box.setText(KEYS_HTML)
    box.setModal(False)
    box.show()


def show_about(parent: QtWidgets.QWidget) -> None:
    QtWidgets.QMessageBox.about(parent, "About MedFLIP Studio", ABOUT_HTML)


def show_model_card(parent: QtWidgets.QWidget, name: str, markdown: str) -> None:
    box = QtWidgets.QDialog(parent)
    box.setWindowTitle(f"Model card — {name}")
    text = QtWidgets.QTextBrowser()
    text.setMarkdown(markdown)
    layout = QtWidgets.QVBoxLayout(box)
    layout.addWidget(text)
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)  # a GUI walk: none
    buttons.rejected.connect(box.reject)
    layout.addWidget(buttons)
    # wide enough for the card's tables (a GUI walk: a 12-column ablation table packed into 700 px)
    room = parent.window().size()
    box.resize(max(700, int(room.width() * 0.85)), max(600, int(room.height() * 0.85)))
    box.show()
