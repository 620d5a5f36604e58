"""Issue 31 item 9, the Retrieval tab in a researcher's day, with the bundled model on real films and real IU
report sentences:

- "after Corpus… ~65 s with no progress": choosing a corpus embeds it in the background at once, the tab counts
  the sentences ("Embedding sentences: n of N"), the window answers meanwhile, and a sentence says when it is
  ready; sentences asked for meanwhile follow.
- "text-search results do not refresh after a model change": the ranking and the sentences shown are the loaded
  model's; after a change they are cleared with a sentence and computed again with the new model.
"""

from __future__ import annotations

import re

import pytest
from PySide6 import QtWidgets

from medflip_core.reports import load_sentence_corpus

N_SENTENCES = 400


@pytest.fixture(scope="module")
def report_sentences(corpus, tmp_path_factory):
    """The first 400 sentences of the real IU reports, one a line (read from the archive at run time)."""
    path = tmp_path_factory.mktemp("iu_sentences") / "iu-first-400.txt"
    sentences = load_sentence_corpus(corpus)[:N_SENTENCES]
    path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return path, sentences


@pytest.fixture
def ready(window, qtbot):
    qtbot.waitUntil(lambda: window.engine is not None and not window.busy(), timeout=60000)
    return window


def _films(shared_data, n: int) -> list[str]:
    folder = shared_data / "cxr-pneumonia-kermany" / "train"
    return [str(p) for cls in ("NORMAL", "PNEUMONIA") for p in sorted((folder / cls).iterdir())[:n]]


def _button(panel, text: str) -> QtWidgets.QPushButton:
    return next(b for b in panel.findChildren(QtWidgets.QPushButton) if b.text() == text)


def test_a_chosen_corpus_is_embedded_in_the_background_with_its_progress(ready, qtbot, shared_data, monkeypatch,
                                                                         report_sentences):
    w, panel = ready, ready.retrieval
    path, sentences = report_sentences
    w.open_paths(_films(shared_data, 1)[:1])
    qtbot.waitUntil(lambda: len(w.images) == 1 and w.current is not None and not w.busy(), timeout=30000)
    w.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.sentences.count() == panel.k.value(), timeout=30000)  # the bank's, first
    shown: list[str] = []  # what the tab said each time its progress bar counted
    bar = panel.corpus_progress
    bar.valueChanged.connect(lambda _v: shown.append(panel.corpus_status.text()) if bar.maximum() > 0 else None)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    _button(panel, "Corpus…").click()
    # the click returned with the corpus still to embed: the work is in a worker, not in the window's thread
    assert not panel.corpus_ready and panel.corpus_progress.isVisible()
    assert panel.corpus_status.text().startswith(f"Reading the reports of {path.name}")
    assert panel.sentences.count() == 0  # the bank's sentences are not left listed as if they were the corpus's
    assert panel.sentences_status.text() == ""  # nor the sentence naming the bank (a GUI walk saw it stale)
    _button(panel, "Find sentences").click()  # asked for meanwhile: they follow when the corpus is ready
    assert "listed when its sentences are embedded" in panel.sentences_status.text()
    w.retrieve(panel.k.value(), "")  # a late answer from the bank (asked for before the corpus) is not shown
    qtbot.waitUntil(lambda: panel.corpus_ready, timeout=120000)
    counts = [re.fullmatch(r"Embedding sentences: ([\d,]+) of ([\d,]+) \(iu-first-400\.txt.*", t) for t in shown]
    assert counts and all(counts), shown
    assert [m.group(2) for m in counts] == [str(N_SENTENCES)] * len(counts)
    assert counts[-1].group(1) == str(N_SENTENCES)  # the last count before the result: all of them
    said = panel.corpus_status.text()
    assert said.startswith(f"{path.name} is ready: {N_SENTENCES} sentences embedded by {w.engine.bundle.name}")
    assert not panel.corpus_progress.isVisible()
    qtbot.waitUntil(lambda: panel.sentences.count() == panel.k.value(), timeout=30000)
    listed = [re.sub(r"^\d+\. \[[-\d.]+\] ", "", panel.sentences.item(i).text())
              for i in range(panel.sentences.count())]
    assert set(listed) <= set(sentences)  # the corpus's sentences, not the bank's
    assert path.name in panel.sentences_status.text() and "not a reading of this image" in panel.sentences_status.text()
    # how close they are, against this image's similarity over the user's corpus (a walk read a tie as two findings)
    assert f"over the {N_SENTENCES:,} sentences" in panel.sentences_status.text()


@pytest.mark.slow
def test_after_a_model_change_the_ranking_and_sentences_are_the_new_models(ready, qtbot, shared_data, tiny_bundle):
    w, panel = ready, ready.retrieval
    w.open_paths(_films(shared_data, 2))
    qtbot.waitUntil(lambda: len(w.images) == 4 and not w.busy(), timeout=30000)
    w.browser.select_index(0)
    qtbot.waitUntil(lambda: panel.sentences.count() == panel.k.value() and not w.busy(), timeout=30000)
    panel.query.setText("pleural effusion")
    panel.query.returnPressed.emit()
    # said at once: the first search embeds every loaded image (a GUI walk saw nothing for ~20 s)
    assert panel.search_status.text().startswith("Ranking the loaded images for “pleural effusion”…")
    qtbot.waitUntil(lambda: len(panel.ranked_images()) == 4 and not w.busy(), timeout=30000)
    before = [panel.ranked.item(i).text() for i in range(panel.ranked.count())]
    sentences_before = [panel.sentences.item(i).text() for i in range(panel.sentences.count())]

    w.use_model_folder(str(tiny_bundle))
    qtbot.waitUntil(lambda: w.engine.bundle.name == "tiny-test", timeout=60000)
    # at once: nothing of the previous model is listed as this one's
    assert [panel.ranked.item(i).text() for i in range(panel.ranked.count())] != before
    assert [panel.sentences.item(i).text() for i in range(panel.sentences.count())] != sentences_before
    qtbot.waitUntil(lambda: not w.busy(), timeout=60000)
    expected = w.session.search("pleural effusion")  # the new model's own ranking, computed here
    after = [panel.ranked.item(i).text() for i in range(panel.ranked.count())]
    assert panel.ranked_images() == [h.index for h in expected]
    assert re.findall(r"\[(-?[\d.]+)\]", " ".join(after)) == [f"{h.score:.3f}" for h in expected]
    assert after != before
    assert panel.search_status.text() == "4 images ranked by tiny-test for “pleural effusion”."
    assert panel.sentences.count() == panel.k.value() and "tiny-test" in panel.sentences_status.text()
    assert [panel.sentences.item(i).text() for i in range(panel.sentences.count())] != sentences_before
