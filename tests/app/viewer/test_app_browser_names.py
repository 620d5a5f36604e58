"""GUI walk 44 #7: names cut in the middle looked identical. Kermany's IM-0115-0001.jpeg and IM-0117-0001.jpeg
both read "IM-011…1.jpeg" in the image list, and the NIH and TBX11K groups were both "Folder: images" (both keep
their films in a folder called images). A file name keeps its end (the image's number); a folder shares its
name with another only with the parent folders that tell them apart."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore


def _row(browser, name: str):
    return browser.findItems(name, QtCore.Qt.MatchFlag.MatchExactly | QtCore.Qt.MatchFlag.MatchRecursive, 0)[0]


def test_two_cut_file_names_stay_different(window, qtbot, shared_data, shown):
    normal = shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL"
    films = [normal / "IM-0115-0001.jpeg", normal / "IM-0117-0001.jpeg"]
    # a DICOM with a patient brings the Patient column, which leaves the names too little room (as in the walk)
    window.open_paths([str(shared_data / "dicom" / "RG3_J2KI.dcm"), *map(str, films)])
    qtbot.waitUntil(lambda: len(window.images) == 3 and not window.busy(), timeout=60000)
    browser = window.browser
    indexes = [browser.indexFromItem(_row(browser, f.name), 0) for f in films]
    # whatever the pane's width (fonts differ between screens), from a cell that holds "…5-0001.jpeg" to the
    # whole name: the walk's "IM-011…1.jpeg" came at one of these widths
    whole = browser.columnWidth(0) + browser.fontMetrics().horizontalAdvance(films[0].name)
    cut = 0
    for width in range(60, whole, 3):
        browser.setColumnWidth(0, width)
        texts = [shown(browser, i) for i in indexes]
        if len(texts[0]) < len("…5-0001.jpeg"):  # too narrow for any cut to keep the one digit that differs
            continue
        cut += texts[0] != films[0].name
        assert texts[0] != texts[1], (width, texts)
        assert texts[0] == films[0].name or texts[0].startswith("…"), texts  # the cut is at the start
    assert cut >= 5
    assert _row(browser, films[0].name).toolTip(0) == str(films[0])  # the whole path on hover


def test_folders_of_the_same_name_are_told_apart(window, qtbot, shared_data, shown):
    nih = shared_data / "cxr-nih-adult" / "images" / "00000261_002.jpg"
    tbx = shared_data / "cxr-tb-tbx11k" / "images" / "tb0003.jpg"
    kermany = shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"
    leg = shared_data / "dicom" / "RG3_J2KI.dcm"  # its patient brings the Patient column (less room, as in the walk)
    window.open_paths([str(leg), str(nih), str(kermany)])
    qtbot.waitUntil(lambda: len(window.images) == 3 and not window.busy(), timeout=60000)
    browser = window.browser
    titles = {browser.topLevelItem(i).text(0) for i in range(browser.topLevelItemCount())}
    assert {"Folder: images", "Folder: NORMAL"} <= titles  # a name of its own needs no parent
    window.open_paths([str(tbx)])  # a second "images" arrives: both groups now say which one they are
    qtbot.waitUntil(lambda: len(window.images) == 4 and not window.busy(), timeout=60000)
    assert not browser.isColumnHidden(1)
    groups = {_row(browser, f.name).parent() for f in (nih, tbx)}
    assert len(groups) == 2
    by_folder = {Path(g.child(0).toolTip(0)).parent.parent.name: g for g in groups}
    assert by_folder["cxr-nih-adult"].text(0) == "Folder: images (cxr-nih-adult)"
    assert by_folder["cxr-tb-tbx11k"].text(0) == "Folder: images (cxr-tb-tbx11k)"
    shown_titles = [shown(browser, browser.indexFromItem(g, 0)) for g in groups]
    assert shown_titles[0] != shown_titles[1] and "…" not in "".join(shown_titles), shown_titles


def test_the_shortest_parent_path_that_tells_folders_apart():
    from app.viewer.browser import distinct_folder_names

    folders = [Path("/d/kermany/train/NORMAL"), Path("/d/kermany/test/NORMAL"), Path("/d/nih/images"),
               Path("/d/tbx/images"), Path("/e/tbx/images"), Path("/d/PNEUMONIA"), Path("/images")]
    assert distinct_folder_names(folders) == {
        Path("/d/kermany/train/NORMAL"): "NORMAL (train)", Path("/d/kermany/test/NORMAL"): "NORMAL (test)",
        Path("/d/nih/images"): "images (nih)", Path("/d/tbx/images"): "images (d/tbx)",
        Path("/e/tbx/images"): "images (e/tbx)", Path("/d/PNEUMONIA"): "PNEUMONIA", Path("/images"): "images (/)"}
