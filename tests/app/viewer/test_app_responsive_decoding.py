"""The window never waits on a decoder (issue 23 item 2): real lossless JPEG 2000 films (about a second of decoding
each, with the GIL held) are read and decoded in worker processes, so the event loop keeps ticking while a
folder of them opens and while an image not in the pixel cache is shown; paging quickly ends on the last image
chosen; the next image in the browser is decoded ahead; the pixels shown are load_image's.

What is asserted is where the decoding happens (never in the window's process), not how long the event loop went
without turning: that is a figure for a benchmark (`medflip bench open --gui`, `medflip bench batch`), and a
time limit here failed on a busy machine."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from medflip_core.imaging import load_image
from medflip_core.imaging.windowing import render


class DecodesHere:
    """Counts the DICOM decodes run in this process (the window's): the reader processes are spawned, so their
    decodes are not counted."""

    def __init__(self, monkeypatch) -> None:
        from medflip_core.imaging import dicom_reader

        self.count = 0
        real = dicom_reader.load_dicom

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(dicom_reader, "load_dicom", counted)


@pytest.fixture
def decodes_here(monkeypatch) -> DecodesHere:
    return DecodesHere(monkeypatch)


@pytest.fixture
def jpeg2000_study(shared_data, tmp_path, distinct_copies) -> list[str]:
    return [str(f) for f in distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "study", 5,
                                            "film{:02d}.dcm")]


def shown_equals_load_image(window, index: int) -> None:
    rg = window.images[index]
    fresh = load_image(rg.path)
    assert window.viewer.radiograph is rg and window.viewer.preview is None
    assert np.array_equal(rg.pixels, fresh.pixels) and np.array_equal(rg.raw, fresh.raw)
    expected = render(fresh.raw, window.viewer.window, fresh.metadata.inverted)
    assert np.array_equal(window.viewer.displayed_pixels(), expected)


def test_a_jpeg2000_folder_opens_with_no_decoding_in_the_window(window, qtbot, jpeg2000_study, decodes_here):
    window.open_paths([str(QtCore.QFileInfo(jpeg2000_study[0]).absolutePath())])
    qtbot.waitUntil(lambda: window.viewer.displayed_pixels() is not None, timeout=30000)
    qtbot.waitUntil(lambda: not window.busy() and len(window.images) == 5, timeout=60000)
    assert decodes_here.count == 0  # read and decoded in the reader processes only
    assert window.last_load.total == 5 and not window.last_load.errors
    shown_equals_load_image(window, 0)


def test_an_image_not_in_the_cache_is_decoded_off_the_window_thread(window, qtbot, jpeg2000_study, decodes_here):
    window.open_paths(jpeg2000_study)
    qtbot.waitUntil(lambda: not window.busy() and len(window.images) == 5, timeout=60000)
    target = window.images[3]
    target.cache.clear()  # nothing decoded, nothing prefetched: the whole decode is ahead
    assert not target.is_decoded()
    window.browser.select_index(3)
    # at once: its thumbnail scaled up to the film's size, and a word that the full image is coming
    assert window.current == 3 and window.viewer.preview is target and window.viewer.radiograph is None
    assert "Decoding" in window.viewer.wl_label.text() and window.viewer.displayed_pixels() is None
    assert window.busy()
    qtbot.waitUntil(lambda: window.viewer.radiograph is target, timeout=30000)
    assert decodes_here.count == 0  # decoded in a reader process, not on the window's thread
    shown_equals_load_image(window, 3)
    assert "W " in window.viewer.wl_label.text() and window.tags.radiograph is target


def test_paging_quickly_ends_on_the_last_image_chosen_and_the_next_is_decoded_ahead(window, qtbot, jpeg2000_study):
    window.open_paths(jpeg2000_study)
    qtbot.waitUntil(lambda: not window.busy() and len(window.images) == 5, timeout=60000)
    window.browser.setFocus()
    window.images[0].cache.clear()  # nothing decoded: the first film is shown again, decoded, then the next
    window.show_image(0)
    assert not window.images[1].is_decoded()
    qtbot.waitUntil(lambda: window.viewer.radiograph is window.images[0] and not window.busy(), timeout=30000)
    qtbot.waitUntil(lambda: window.images[1].is_decoded(), timeout=30000)  # the next one, without being chosen
    for _ in range(3):  # Down, Down, Down faster than a film decodes
        qtbot.keyClick(window.browser, QtCore.Qt.Key.Key_Down)
    assert window.current == 3
    qtbot.waitUntil(lambda: not window.busy(), timeout=30000)
    qtbot.wait(300)  # a stale decode, had one been queued, would land now
    assert window.viewer.radiograph is window.images[3]
    shown_equals_load_image(window, 3)
    qtbot.waitUntil(lambda: window.images[4].is_decoded(), timeout=30000)  # the one after the last choice


def test_a_thousand_links_open_without_a_flood_of_progress_freezing_the_window(window, qtbot, shared_data, tmp_path):
    folder = tmp_path / "links"
    folder.mkdir()
    for i in range(1000):  # counted in a fraction of a second: 1,000 progress updates, ~1.5 ms each if applied
        (folder / f"im{i:04d}.dcm").symlink_to(shared_data / "dicom" / "RG1_UNCR.dcm")
    values: list[int] = []
    window.load_progress.valueChanged.connect(values.append)
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: window.last_load is not None and not window.busy(), timeout=60000)
    assert len(window.images) == 1 and window.last_load.done == 1000
    assert values == sorted(values) and values[-1] == 1000 and len(values) < 200  # the latest count, not each one


def test_a_film_deleted_since_it_was_opened_says_so_when_chosen(window, qtbot, jpeg2000_study):
    import os

    window.open_paths(jpeg2000_study[:2])
    qtbot.waitUntil(lambda: not window.busy() and len(window.images) == 2, timeout=60000)
    qtbot.waitUntil(lambda: window.images[1].is_decoded(), timeout=30000)  # prefetched: then taken away
    window.images[0].cache.clear()
    os.remove(jpeg2000_study[1])
    window.browser.select_index(1)
    qtbot.waitUntil(lambda: "film01.dcm" in window.last_error, timeout=30000)
    assert "no such file" in window.last_error and "Traceback" not in window.last_error
    assert window.viewer.preview is window.images[1] and window.viewer.wl_label.text() == "Full image unavailable"
    window.browser.select_index(0)  # the window keeps working
    qtbot.waitUntil(lambda: window.viewer.radiograph is window.images[0], timeout=30000)


def test_the_decode_counter_sees_a_decode_in_this_process(decodes_here, jpeg2000_study):
    """The counter the tests above rely on: a film decoded in this process is counted."""
    load_image(jpeg2000_study[0])
    assert decodes_here.count == 1
