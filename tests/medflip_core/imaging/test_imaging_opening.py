"""Opening a study with bounded memory: headers and a thumbnail per image, pixels decoded on demand into a cache
bounded in megabytes, duplicates opened once and named (real DICOM files of ../shared/data/dicom)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from medflip_core.imaging import PixelCache, load_image
from medflip_core.imaging.opening import open_images

CR = "RG1_UNCR.dcm"  # 1955 x 1841 CR chest, uncompressed: 28 MB of float32 pixels and raw values


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def links(folder: Path, target: Path, n: int) -> list[Path]:
    folder.mkdir()
    out = []
    for i in range(n):
        out.append(folder / f"l{i:03d}.dcm")
        out[-1].symlink_to(target)
    return out


def test_200_links_to_one_film_open_once_in_bounded_memory(shared_data, tmp_path):
    files = links(tmp_path / "links", shared_data / "dicom" / CR, 200)
    gc.collect()
    before = rss_mb()
    result = open_images([str(p) for p in files], cache=PixelCache(256))
    grown = rss_mb() - before
    assert grown < 150, f"RSS grew {grown:.0f} MB for 200 links to one film"  # eager: 200 x 28 MB
    assert len(result.images) == 1 and result.total == 200 and result.done == 200
    assert result.duplicates == {str(files[0]): [str(p) for p in files[1:]]}
    assert result.duplicate_message() == "199 files are the same image as l000.dcm and were opened once."


def test_distinct_full_size_films_keep_thumbnails_not_pixels(shared_data, tmp_path, distinct_copies):
    files = distinct_copies(shared_data / "dicom" / CR, tmp_path / "study", 24)
    cache = PixelCache(64)
    gc.collect()
    before = rss_mb()
    result = open_images([str(tmp_path / "study")], cache=cache)
    grown = rss_mb() - before
    assert len(result.images) == 24 and not result.duplicates  # 24 SOP instances: no duplicates
    assert grown < 250, f"RSS grew {grown:.0f} MB for 24 films"  # eager: 24 x 28 MB = 690 MB
    assert all(rg.on_demand and max(rg.thumbnail.shape) <= 96 for rg in result.images)
    assert not any(rg.is_decoded() for rg in result.images[1:])  # the first is kept: it is shown next
    for rg in result.images:  # every film's pixels on demand: the cache never holds more than its limit
        assert rg.pixels.shape == (1955, 1841)
        assert cache.nbytes <= 64 * 2**20
    assert rss_mb() - before < 350
    assert [p.name for p in files] == [rg.path.name for rg in result.images]


def test_pixels_decoded_on_demand_equal_the_eagerly_decoded_ones(shared_data):
    folder = shared_data / "dicom"
    kermany = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[0]
    result = open_images([str(folder), str(kermany)], cache=PixelCache(512))
    assert len(result.images) == 9 and not result.errors
    for rg in result.images:
        eager = load_image(rg.path)
        assert rg.on_demand and not eager.on_demand
        assert rg.metadata == eager.metadata and rg.notes == eager.notes and rg.patient == eager.patient
        assert rg.pixels.dtype == np.float32 and np.array_equal(rg.pixels, eager.pixels)
        assert np.array_equal(rg.raw, eager.raw)
        assert rg.shape == eager.pixels.shape


def test_the_cache_evicts_above_its_limit_and_decodes_again(shared_data):
    cache = PixelCache(64)
    names = [CR, "RG3_J2KI.dcm", "nih_dx_secondary_capture.dcm"]  # 28.8 + 24.8 + 8.4 MB + ...
    images = open_images([str(shared_data / "dicom" / n) for n in names], cache=cache).images
    cache.clear()
    first = images[0].pixels.copy()
    for rg in images[1:]:
        rg.arrays()
    assert cache.nbytes <= 64 * 2**20 and images[1].cache_key in cache
    cache.put("another", (np.zeros((2000, 2000), np.float32), np.zeros((2000, 2000), np.float32)))  # 32 MB
    stats = cache.stats()
    assert images[0].cache_key not in cache and stats.evictions >= 1  # least recently used out first
    assert stats.megabytes <= 64
    assert np.array_equal(images[0].arrays(keep=False)[0], first)  # evicted: decoded again, the same values
    assert images[0].cache_key not in cache  # keep=False: a scan does not fill the cache
    cache.put("huge", (np.zeros((4000, 4000), np.float32), np.zeros((4000, 4000), np.float32)))  # 128 MB
    assert "huge" not in cache and cache.stats().refused == 1
    cache.set_limit_mb(10)  # below the floor: raised to 64 MB, never zero
    assert cache.limit_mb == 64


def test_duplicates_are_named_and_a_relabelled_copy_is_not_one(shared_data, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    base = shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"
    (folder / "a.dcm").symlink_to(base)
    (folder / "b_copy.dcm").write_bytes(base.read_bytes())  # another file, the same SOP instance
    (folder / "c_link.dcm").symlink_to(base)
    (folder / "d_mono1.dcm").symlink_to(shared_data / "dicom" / "rsna_cr_chest_fake_monochrome1.dcm")
    result = open_images([str(folder)], cache=PixelCache(64))
    # same UID but relabelled MONOCHROME1: displayed differently, so it is opened, not merged away
    assert [rg.path.name for rg in result.images] == ["a.dcm", "d_mono1.dcm"]
    assert result.duplicates == {str(folder / "a.dcm"): [str(folder / "b_copy.dcm"), str(folder / "c_link.dcm")]}
    assert result.duplicate_message() == "2 files are the same image as a.dcm and were opened once."
    assert "b_copy.dcm, c_link.dcm" in result.duplicate_details()


def test_progress_counts_every_file_of_a_drop_and_the_load_can_stop(shared_data, tmp_path, distinct_copies):
    files = distinct_copies(shared_data / "dicom" / "nih_dx_secondary_capture.dcm", tmp_path / "s", 5)
    seen: list[tuple[int, int]] = []
    chunks: list[tuple[int, int]] = []  # (files read when a chunk arrived, images in it)
    result = open_images([str(p) for p in files], progress=lambda d, t: seen.append((d, t)),
                         on_images=lambda imgs: chunks.append((len(seen), len(imgs))), cache=PixelCache(64))
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # not 1/1 five times
    assert chunks[0] == (1, 1)  # the first image is handed over at once, before the second file is read
    assert sum(n for _, n in chunks) == 5 == len(result.images)
    seen.clear()
    stopped = open_images([str(p) for p in files], progress=lambda d, t: seen.append((d, t)),
                          should_stop=lambda: len(seen) >= 2, cache=PixelCache(64))
    assert stopped.cancelled and stopped.done == 2 and len(stopped.images) == 2 and stopped.total == 5
    assert not stopped.failed_paths  # the files not reached are not forgotten from the Recent menu
