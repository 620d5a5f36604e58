"""A GUI walk: in one-class-per-image mode the Zero-shot tab showed "Pneumonia 75.2 %" beside "COVID-19 score 0.20"
while the shares of all of them summed to 100 %; and Batch shows fractions where the tab shows per cent. One unit per
view, said: every bar in per cent (a label outside the model's labels marked a score), Batch in fractions of 1 as its
CSV, said in its legend. Real films, the bundled model, offscreen."""

from __future__ import annotations

import re

import pytest

LABELS = "Pneumonia\nCOVID-19\nNodule\nbanana"


def _per_cent(text: str) -> float:
    match = re.fullmatch(r"(score )?(\d+\.\d) %", text)
    assert match, f"not a per cent: {text!r}"
    return float(match.group(2))


def test_every_zero_shot_bar_is_a_per_cent_and_the_shares_add_up(window, qtbot, shared_data):
    w, panel = window, window.zero_shot
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: bool(panel.bars) and not w.busy(), timeout=60000)
    panel.set_label_mode("exclusive")
    panel.labels_edit.setPlainText(LABELS)
    panel.request()
    qtbot.waitUntil(lambda: len(panel.bars) == 4 and not w.busy(), timeout=60000)
    shown = {label: bar.text() for label, bar in panel.bars.items()}
    assert sum(_per_cent(text) for text in shown.values()) == pytest.approx(100, abs=0.3)
    outside = {"COVID-19", "Nodule", "banana"}
    assert all(shown[label].startswith("score ") == (label in outside) for label in shown)  # † says what it is
    assert "100 %" in panel.status.text()


def test_batch_says_its_scores_are_fractions_of_one(window, qtbot, shared_data, tmp_path):
    w = window
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    source = shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA"
    for film in sorted(source.iterdir())[:2]:
        (tmp_path / film.name).symlink_to(film)
    w.zero_shot.set_label_mode("exclusive")
    w.zero_shot.labels_edit.setPlainText(LABELS)
    w.score_folder(str(tmp_path))
    qtbot.waitUntil(lambda: len(w.batch.rows) == 2 and not w.busy(), timeout=120000)
    table = w.batch.table
    cells = [table.item(r, c).text() for r in range(2) for c in range(2, 6)]
    assert all(0 <= float(text) <= 1 for text in cells)  # fractions, and the legend says so
    legend = w.batch.status.text()
    assert "fraction of 1" in legend and "as in the CSV" in legend
