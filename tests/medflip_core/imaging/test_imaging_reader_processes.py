"""Reading files in worker processes (medflip_core.imaging.reader_processes): the same images, pixels and messages
as load_image in the caller, a superseded request never decoded, a worker killed mid-read costs no file (real
DICOM files of ../shared/data/dicom)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import PixelCache, Radiograph, load_image
from medflip_core.imaging.opening import open_images
from medflip_core.imaging.reader_processes import OnDemandDecoder, ReaderProcesses


@pytest.fixture(scope="module")
def reader():
    r = ReaderProcesses(2)
    r.start()
    yield r
    r.close()


def test_a_folder_opened_in_workers_equals_the_one_opened_here(reader, shared_data, tmp_path, distinct_copies):
    folder = tmp_path / "study"
    folder.mkdir()
    for f in sorted((shared_data / "dicom").glob("*.dcm")):
        (folder / f.name).symlink_to(f)
    (folder / "again.dcm").symlink_to(shared_data / "dicom" / "RG1_UNCR.dcm")  # a duplicate, by its link
    cut = distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "cut", 1)[0].read_bytes()
    (folder / "broken.dcm").write_bytes(cut[: len(cut) * 2 // 3])  # its own SOP instance, its stream cut short
    here = open_images([str(folder)], cache=PixelCache(256))
    cache = PixelCache(256)
    there = open_images([str(folder)], cache=cache, reader=reader)
    assert [rg.path.name for rg in there.images] == [rg.path.name for rg in here.images] and len(here.images) == 8
    assert there.errors == here.errors and len(here.errors) == 1 and "broken.dcm" in here.errors[0]
    assert there.duplicates == here.duplicates and there.done == here.done == 10
    for a, b in zip(there.images, here.images, strict=True):
        assert a.metadata == b.metadata and a.notes == b.notes and a.patient == b.patient
        assert np.array_equal(a.thumbnail, b.thumbnail) and a.on_demand and a.cache is cache
    assert there.images[0].is_decoded() and not any(rg.is_decoded() for rg in there.images[1:])
    first = load_image(there.images[0].path)  # the image shown first came with its pixels, load_image's
    assert np.array_equal(there.images[0].pixels, first.pixels) and np.array_equal(there.images[0].raw, first.raw)


@pytest.mark.parametrize("name", ["RG1_J2KR.dcm", "RG3_J2KI.dcm", "rsna_cr_chest_fake_monochrome1.dcm"])
def test_pixels_decoded_in_a_worker_equal_load_images(reader, shared_data, name):
    path = shared_data / "dicom" / name
    pixels, raw = reader.arrays(path)
    here = load_image(path)
    assert pixels.dtype == np.float32 and np.array_equal(pixels, here.pixels) and np.array_equal(raw, here.raw)


def test_the_last_request_is_decoded_and_a_superseded_one_is_not(reader, shared_data, tmp_path, distinct_copies):
    files = distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "s", 5)
    images = open_images([str(p) for p in files], cache=PixelCache(512), reader=reader).images
    images[0].cache.clear()
    ready: list[tuple[str, str]] = []
    done = threading.Event()

    def on_ready(rg, error):
        ready.append((rg.path.name, error))
        if rg is images[3]:
            done.set()

    decoder = OnDemandDecoder(reader, on_ready)
    try:
        for rg in images[:4]:  # paging quickly: each choice replaces the previous one
            decoder.request(rg, prefetch=[images[4]])
        assert decoder.pending()
        assert done.wait(60)
        # the first request may have started before the others came; the two in between never did
        assert [n for n, _ in ready] in (["c003.dcm"], ["c000.dcm", "c003.dcm"]) and all(e == "" for _, e in ready)
        assert not images[1].is_decoded() and not images[2].is_decoded()
        assert np.array_equal(images[3].pixels, load_image(files[3]).pixels)
        deadline = time.monotonic() + 60  # then the prefetch, silently
        while not images[4].is_decoded() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert images[4].is_decoded() and [n for n, _ in ready][-1] == "c003.dcm"
        assert not decoder.pending()
    finally:
        decoder.close()


def test_a_worker_killed_while_reading_costs_no_file(shared_data, tmp_path, distinct_copies):
    files = distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "s", 4)
    others = {c.pid for c in multiprocessing.active_children()}
    reader = ReaderProcesses(1)
    reader.start()
    deadline = time.monotonic() + 30
    while not {c.pid for c in multiprocessing.active_children()} - others and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = {c.pid for c in multiprocessing.active_children()} - others
    killed: list[int] = []

    def kill_the_worker(done: int, total: int) -> None:
        if done == 1 and not killed:  # the second film is being read now (about a second of JPEG 2000)
            for pid in workers:
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)

    try:
        result = open_images([str(p) for p in files], progress=kill_the_worker, cache=PixelCache(256), reader=reader)
        assert killed and reader.crashes == 1
        assert not result.errors and [rg.path.name for rg in result.images] == [p.name for p in files]
        assert np.array_equal(reader.arrays(files[2])[0], load_image(files[2]).pixels)  # the pool started again
    finally:
        reader.close()


def test_a_load_in_workers_stops_within_a_file(reader, shared_data, tmp_path, distinct_copies):
    files = distinct_copies(shared_data / "dicom" / "RG1_J2KR.dcm", tmp_path / "s", 8)
    stop = threading.Event()
    result = open_images([str(p) for p in files], progress=lambda d, t: stop.set() if d == 1 else None,
                         should_stop=stop.is_set, cache=PixelCache(256), reader=reader)
    assert result.cancelled and result.done == 1 and len(result.images) == 1 and result.total == 8


def test_load_images_gives_each_file_in_order_with_its_error_in_place(reader, shared_data, tmp_path):
    names = ["RG1_J2KR.dcm", "RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm", "RG3_J2KI.dcm"]
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM but not really" * 10)
    paths = [shared_data / "dicom" / names[0], broken, *(shared_data / "dicom" / n for n in names[1:])]
    got = list(reader.load_images(paths, depth=2))
    assert [p for p, _ in got] == paths
    assert isinstance(got[1][1], Exception) and "broken.dcm" in str(got[1][1])
    for path, rg in got[:1] + got[2:]:
        here = load_image(path)
        assert rg.is_decoded() and rg.metadata == here.metadata
        assert np.array_equal(rg.pixels, here.pixels)


def test_load_images_closed_early_leaves_the_workers_free(reader, shared_data, distinct_copies, tmp_path):
    files = distinct_copies(shared_data / "dicom" / "RG1_UNCR.dcm", tmp_path, 6)
    loaded = reader.load_images(files, depth=3)
    first_path, first = next(loaded)
    assert first_path == files[0] and first.is_decoded()
    loaded.close()  # the other reads are cancelled, or freed when they end
    again = list(reader.load_images(files[-2:]))  # the workers are free for the next job at once
    assert [p for p, _ in again] == files[-2:] and all(rg.is_decoded() for _, rg in again)


def test_load_images_of_a_reader_closed_under_it_ends_with_one_sentence(shared_data, distinct_copies, tmp_path):
    """The window closing during a batch: the load ends with the reader's own sentence (no CancelledError, no
    error row per file still to come), and what was read before stays read."""
    files = distinct_copies(shared_data / "dicom" / "RG1_UNCR.dcm", tmp_path, 6)
    own = ReaderProcesses(1)
    try:
        loaded = own.load_images(files, depth=2)
        first_path, first = next(loaded)
        assert first_path == files[0] and first.is_decoded()
        own.close()
        rest = []
        with pytest.raises(ImageLoadError, match="image reader was closed"):
            for item in loaded:
                rest.append(item)
        assert all(isinstance(rg, Radiograph) and p in files[1:3] for p, rg in rest)
    finally:
        own.close()


def test_a_read_submitted_as_the_reader_closes_is_the_readers_sentence(shared_data, monkeypatch):
    """close() may shut the pool down between the look at it and the submit (another thread): the caller gets
    the reader's ImageLoadError, not the executor's RuntimeError."""
    own = ReaderProcesses(1)
    pool = own._current()  # the look, before close()
    own.close()
    monkeypatch.setattr(own, "_current", lambda: pool)  # the submit, after it
    with pytest.raises(ImageLoadError, match="image reader was closed"):
        own.submit_open(shared_data / "dicom" / "RG1_UNCR.dcm", keep_pixels=False)
