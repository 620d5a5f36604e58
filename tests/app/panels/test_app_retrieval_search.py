"""Text -> loaded images: the ranking on screen says when films opened after it are not in it. Real films, the
bundled model, offscreen."""

from __future__ import annotations


def test_a_text_search_says_when_films_opened_after_it_are_not_ranked(window, qtbot, shared_data):
    """A GUI walk: "1 images ranked" stayed beside nine open films after more were opened."""
    w, panel = window, window.retrieval
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 1 and not w.busy(), timeout=60000)
    w.search_images("pleural effusion")
    qtbot.waitUntil(lambda: panel.ranked.count() == 1 and not w.busy(), timeout=60000)
    assert panel.search_status.text().startswith("1 image ranked by ")
    w.open_paths([str(shared_data / "dicom" / "RG1_J2KR.dcm"), str(shared_data / "dicom" / "RG3_J2KI.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 3 and not w.busy(), timeout=60000)
    assert "2 images opened since, not in this ranking: search again" in panel.search_status.text()
    w.search_images("pleural effusion")
    qtbot.waitUntil(lambda: len(panel.ranked_images()) == 3 and not w.busy(), timeout=60000)
    assert "opened since" not in panel.search_status.text()
