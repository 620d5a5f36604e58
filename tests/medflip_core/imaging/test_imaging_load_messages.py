"""What a researcher reads when a file cannot be opened: one sentence naming the file, what it is, what is wrong
(for a truncated file: how much pixel data was expected and found, or that the compressed stream ends early) and
what to do; never a library's name, a decoder's cut sentence or a patient-identifying header value."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from PIL import Image

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import iter_image_files, load_image
from medflip_core.imaging.folders import dicomdir_files

LIBRARIES = re.compile(r"pydicom|pillow|\bPIL\b|simpleitk|\bitk\b|gdcm|openjpeg|libjpeg|pylibjpeg|numpy|"
                       r"force=True|Traceback|Error\b|SOC marker", re.IGNORECASE)
ADVICE = ("Copy it again", "Export it", "Open the")
# Values written into the identifying tags of the test files: none may appear in any message.
IDENTIFYING = {"PatientName": "Doe^Jane", "PatientID": "MRN-0042-SECRET", "PatientBirthDate": "19470312",
               "AccessionNumber": "ACC99887766", "InstitutionName": "Saint Example Hospital",
               "ReferringPhysicianName": "Smith^Robert", "OtherPatientIDs": "OTHER-ID-5150"}
ENCAPSULATED_PIXEL_DATA = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"


def _message(path: Path) -> str:
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    return str(caught.value)


def _check_sentence(message: str, path: Path) -> None:
    """The rules every load message keeps."""
    assert message.startswith(f"{path.name}: "), message
    assert not LIBRARIES.search(message), message
    assert message.endswith("."), message
    assert any(advice in message for advice in ADVICE), message
    for value in IDENTIFYING.values():
        assert value not in message and value.split("^")[0] not in message, message


def _with_identifying_tags(source: Path, out: Path) -> bytes:
    """A copy of a real DICOM carrying the identifying values above (so that a message quoting the header would
    show them)."""
    ds = pydicom.dcmread(source)
    for keyword, value in IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.save_as(out)
    return out.read_bytes()


@pytest.mark.parametrize(("name", "compression"), [
    ("RG1_J2KR.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
    ("RG1_J2KI.dcm", "JPEG 2000 Image Compression"),
    ("rsna_cr_chest_jpeg_baseline.dcm", "JPEG Baseline"),
])
def test_truncated_compressed_dicom_says_its_stream_ends_early(shared_data, tmp_path, name, compression):
    data = _with_identifying_tags(shared_data / "dicom" / name, tmp_path / "full.dcm")
    start = data.index(ENCAPSULATED_PIXEL_DATA)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    message = _message(cut)
    _check_sentence(message, cut)
    ds = pydicom.dcmread(shared_data / "dicom" / name, stop_before_pixels=True)
    assert "this DICOM image is truncated. Its pixel data (" in message
    assert f"a {ds.Columns}x{ds.Rows} image of {ds.BitsAllocated}-bit pixels, compressed as {compression}" in message
    assert f"ends early, after {len(data) // 2 - start - 12:,} bytes of the compressed stream" in message
    assert "contains no image" not in message and "SOP class" not in message


@pytest.mark.parametrize("keep", ["half", "all but 1000 bytes"])
def test_truncated_uncompressed_dicom_gives_expected_and_found_bytes(shared_data, tmp_path, keep):
    data = _with_identifying_tags(shared_data / "dicom" / "RG1_UNCR.dcm", tmp_path / "full.dcm")
    ds = pydicom.dcmread(tmp_path / "full.dcm")
    expected = ds.Rows * ds.Columns * ds.BitsAllocated // 8  # 1955 x 1841 x 2 bytes
    header = data.index(b"\xe0\x7f\x10\x00OW", 132) + 12  # where the pixel values start (explicit VR OW)
    length = len(data) // 2 if keep == "half" else len(data) - 1000
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:length])
    message = _message(cut)
    _check_sentence(message, cut)
    assert (f"this DICOM image is truncated. A 1841x1955 image of 16-bit pixels needs {expected:,} bytes of pixel "
            f"data, but the file ends after {length - header:,} of them") in message
    share = re.search(r"of them \(([\d.]+) %\)", message)
    assert share and float(share.group(1)) < 100.0  # a few bytes short never reads as 100 %


def test_dicom_cut_before_its_pixel_data_says_so(shared_data, tmp_path):
    data = (shared_data / "dicom" / "RG1_J2KR.dcm").read_bytes()
    start = data.index(ENCAPSULATED_PIXEL_DATA)
    cut = tmp_path / "header-only.dcm"
    cut.write_bytes(data[:start])
    message = _message(cut)
    _check_sentence(message, cut)
    assert (f"this DICOM file is truncated. Its header describes a 1841x1955 image of 16-bit pixels, but the file "
            f"ends after {start:,} bytes, before any pixel data") in message


@pytest.mark.parametrize("name", ["RG1_J2KR.dcm", "RG1_UNCR.dcm", "nih_dx_secondary_capture.dcm"])
def test_every_cut_of_a_real_dicom_gets_a_sentence(shared_data, tmp_path, name):
    """Cuts in the preamble, the file meta, the header, inside the pixel data element's tag and length, and in the
    pixel data: each a sentence by the rules, none 'contains no image' (each of these files is an image)."""
    data = _with_identifying_tags(shared_data / "dicom" / name, tmp_path / "full.dcm")
    pixel_tag = data.index(b"\xe0\x7f\x10\x00", 132)
    cuts = sorted({132, 140, 200, 400, 700, 1000, pixel_tag - 1, *range(pixel_tag, pixel_tag + 14, 3),
                   len(data) // 3, len(data) - 20000})
    for length in cuts:
        cut = tmp_path / f"cut-{length}.dcm"
        cut.write_bytes(data[:length])
        message = _message(cut)
        _check_sentence(message, cut)
        assert "contains no image. It is" not in message, message
        assert "truncated" in message or "incomplete" in message, message


def test_damaged_compressed_stream_is_not_called_truncated(shared_data, tmp_path):
    data = bytearray((shared_data / "dicom" / "RG1_J2KR.dcm").read_bytes())
    stream = data.index(b"\xff\x4f\xff\x51", data.index(ENCAPSULATED_PIXEL_DATA))  # the codestream's SOC + SIZ
    data[stream: stream + 64] = bytes(64)
    bad = tmp_path / "damaged.dcm"
    bad.write_bytes(bytes(data))
    message = _message(bad)
    _check_sentence(message, bad)
    assert ("this DICOM image's pixel data, compressed as JPEG 2000 Image Compression (Lossless Only), is damaged "
            "and cannot be decoded") in message


@pytest.mark.parametrize("name", ["notes.txt", "notes.dcm", "notes", "notes.png"])
def test_a_text_file_is_neither_dicom_nor_an_image(tmp_path, name):
    path = tmp_path / name
    path.write_text("Findings: no focal consolidation. Impression: normal chest.\n" * 20, encoding="utf-8")
    message = _message(path)
    _check_sentence(message, path)
    assert "PNG, JPEG, TIFF or BMP image" in message and "it contains text" in message
    if name == "notes.dcm":
        assert "not a DICOM file, although it is named like one (it has no DICOM header)" in message
    else:
        assert "neither a DICOM file nor a PNG, JPEG, TIFF or BMP image" in message


def test_an_archive_is_named_as_one(shared_data, tmp_path):
    import zipfile

    archive = tmp_path / "study.dcm"  # a zip of DICOMs given a DICOM name
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm", "IM0001.dcm")
    message = _message(archive)
    _check_sentence(message, archive)
    assert "it is a ZIP archive (extract it, then open the images inside)" in message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_png_and_jpeg_say_truncated(shared_data, tmp_path, fmt):
    jpeg = shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"
    whole = tmp_path / f"whole.{fmt.lower()}"
    Image.open(jpeg).save(whole, fmt)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    message = _message(cut)
    _check_sentence(message, cut)
    assert f"this {fmt} image is truncated. The file ends before its image data does" in message


def test_a_dicom_without_an_image_says_what_it_is_without_patient_values(shared_data, tmp_path):
    _with_identifying_tags(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm", tmp_path / "full.dcm")
    ds = pydicom.dcmread(tmp_path / "full.dcm")
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    for keyword in ("Rows", "Columns"):
        delattr(ds, keyword)
    ds.save_as(tmp_path / "sr.dcm")
    message = _message(tmp_path / "sr.dcm")
    _check_sentence(message, tmp_path / "sr.dcm")
    assert "this DICOM file contains no image. It is a Enhanced SR Storage object" in message


def test_a_broken_dicomdir_is_a_sentence_and_its_folder_still_opens(shared_data, tmp_path):
    (tmp_path / "IM0001.dcm").write_bytes((shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm").read_bytes())
    (tmp_path / "DICOMDIR").write_text("an index damaged in copying\n" * 50)
    with pytest.raises(ImageLoadError, match=r"this DICOMDIR .* is damaged or incomplete and cannot be read") as err:
        dicomdir_files(tmp_path / "DICOMDIR")
    assert not LIBRARIES.search(str(err.value))
    assert [p.name for p in iter_image_files(tmp_path)] == ["IM0001.dcm"]


def test_medflip_info_on_bad_files_prints_our_sentences_and_no_decoder_traceback(shared_data, tmp_path):
    import os
    import subprocess
    import sys

    data = bytearray((shared_data / "dicom" / "RG1_J2KR.dcm").read_bytes())
    stream = data.index(b"\xff\x4f\xff\x51", data.index(ENCAPSULATED_PIXEL_DATA))
    data[stream: stream + 64] = bytes(64)
    (tmp_path / "damaged.dcm").write_bytes(bytes(data))
    (tmp_path / "cut.dcm").write_bytes(bytes(data[: len(data) // 2]))
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "info", str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all(": ERROR " in line for line in lines)
    assert "is damaged and cannot be decoded" in proc.stdout and "is truncated" in proc.stdout
    assert "Traceback" not in proc.stderr and "pydicom" not in proc.stderr
