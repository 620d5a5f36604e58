"""The About box: version, the research-use notice, data licences."""

from __future__ import annotations

from PySide6 import QtWidgets

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


def show_about(parent: QtWidgets.QWidget) -> None:
    QtWidgets.QMessageBox.about(parent, "About MedFLIP Studio", ABOUT_HTML)


def show_model_card(parent: QtWidgets.QWidget, name: str, markdown: str) -> None:
    box = QtWidgets.QDialog(parent)
    box.setWindowTitle(f"Model card — {name}")
    text = QtWidgets.QTextBrowser()
    text.setMarkdown(markdown)
    layout = QtWidgets.QVBoxLayout(box)
    layout.addWidget(text)
    box.resize(700, 600)
    box.show()
