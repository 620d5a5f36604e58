from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import iter_image_files, load_folder, load_image
from medflip_core.imaging.windowing import apply_window, percentile_window, render


def test_kermany_jpeg(shared_data):
    rg = load_image(shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg")
    assert rg.pixels.shape == (224, 224) and rg.metadata.format == "JPEG"
    assert rg.metadata.window.source == "full"
    # stored as RGB with three equal channels: the grey is any channel, exactly, and no colour note
    with Image.open(shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg") as im:
        assert im.mode == "RGB"
        channel = np.asarray(im)[..., 1].astype(np.float32)
    assert np.array_equal(rg.raw, channel) and np.array_equal(rg.pixels, channel / 255.0)
    assert rg.notes == ()


def test_16_bit_png_keeps_precision(tmp_path):
    arr = (np.arange(256 * 256, dtype=np.uint32).reshape(256, 256) % 4096).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "x16.png")
    rg = load_image(tmp_path / "x16.png")
    assert rg.raw.max() == 4095 and len(np.unique(rg.raw)) == 4096
    assert rg.metadata.window.source == "percentile"


def test_rgb_becomes_grey_with_a_note(tmp_path):
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "red.png")
    rg = load_image(tmp_path / "red.png")
    assert rg.pixels.ndim == 2 and rg.pixels.mean() == pytest.approx(0.299 * 200 / 255, abs=1e-3)
    assert any("grey" in n for n in rg.notes)


def test_cmyk_jpeg_reads_as_its_grey_not_its_ink(tmp_path):
    """A CMYK JPEG (print workflows) stores ink: read as RGB channels, grey 100 would come out as 155."""
    Image.fromarray(np.full((16, 16, 3), 100, dtype=np.uint8)).convert("CMYK").save(tmp_path / "ink.jpg")
    with Image.open(tmp_path / "ink.jpg") as im:
        assert im.mode == "CMYK"
    rg = load_image(tmp_path / "ink.jpg")
    assert np.allclose(rg.raw, 100, atol=1) and rg.notes == ()


def test_one_bit_png_reads_white_as_white(tmp_path):
    bits = np.zeros((16, 16), dtype=bool)
    bits[:8] = True
    Image.fromarray(bits).save(tmp_path / "bits.png")
    with Image.open(tmp_path / "bits.png") as im:
        assert im.mode == "1"
    rg = load_image(tmp_path / "bits.png")
    assert rg.pixels[:8].min() == 1.0 and rg.pixels[8:].max() == 0.0
    assert rg.metadata.window.source == "full"


def test_folder_listing(shared_data, tmp_path):
    src = shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"
    shutil.copy(src, tmp_path / "a.dcm")
    shutil.copy(shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg", tmp_path / "b.jpeg")
    (tmp_path / "sub").mkdir()
    shutil.copy(src, tmp_path / "sub" / "IMG0001")  # extension-less DICOM, as on CDs
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    files = iter_image_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.dcm", "b.jpeg", "sub/IMG0001"]
    images, errors = load_folder(tmp_path)
    assert len(images) == 3 and errors == []
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageLoadError, match="contains no images"):
        iter_image_files(empty)


def test_dicomdir(shared_data, tmp_path):
    from pydicom import dcmread
    from pydicom.fileset import FileSet

    fs = FileSet()
    for i, name in enumerate(("rsna_cr_chest_jpeg_baseline.dcm", "nih_dx_secondary_capture.dcm")):
        ds = dcmread(shared_data / "dicom" / name)
        # the records a DICOMDIR needs; the test files leave them empty
        ds.PatientID = ds.get("PatientID") or f"P{i}"
        ds.StudyID = ds.get("StudyID") or "1"
        ds.SeriesNumber = ds.get("SeriesNumber") or 1
        ds.InstanceNumber = ds.get("InstanceNumber") or 1
        ds.StudyDate = ds.get("StudyDate") or "20200101"
        ds.StudyTime = ds.get("StudyTime") or "000000"
        fs.add(ds)
    fs.write(tmp_path / "cd")
    files = iter_image_files(tmp_path / "cd" / "DICOMDIR")
    assert len(files) == 2
    assert sorted(load_image(f).metadata.rows for f in files) == [1024, 1024]
    assert len(iter_image_files(tmp_path / "cd")) == 2  # a folder with a DICOMDIR uses it


def test_window_function_by_hand():
    raw = np.array([0.0, 50.0, 100.0, 150.0, 200.0], dtype=np.float32)
    out = apply_window(raw, center=100.0, width=101.0)  # DICOM linear: (x - 99.5) / 100 + 0.5
    np.testing.assert_allclose(out, [0.0, 0.005, 0.505, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(render(raw, percentile_window(raw, 0, 100), invert=True),
                               1.0 - render(raw, percentile_window(raw, 0, 100), invert=False))


def test_percentile_window_ignores_outliers():
    rng = np.random.default_rng(0)
    raw = rng.normal(1000, 50, size=(200, 200)).astype(np.float32)
    raw[0, :60] = 60000  # a burned-in label: 0.15 % of the pixels
    w = percentile_window(raw)
    assert 700 < w.center < 1300 and w.width < 1000
