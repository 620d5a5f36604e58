"""Every real DICOM in ../shared/data/dicom, decoded and displayed correctly; identifying tags kept apart."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from medflip_core.imaging import IDENTIFYING_KEYWORDS, load_image

FILES = ["RG1_J2KI.dcm", "RG1_J2KR.dcm", "RG1_UNCR.dcm", "RG3_J2KI.dcm", "highdicom_dx_animal_lateral.dcm",
         "nih_dx_secondary_capture.dcm", "rsna_cr_chest_fake_monochrome1.dcm", "rsna_cr_chest_jpeg_baseline.dcm"]


@pytest.mark.parametrize("name", FILES)
def test_every_file_loads_display_ready(shared_data, name):
    rg = load_image(shared_data / "dicom" / name)
    assert rg.pixels.dtype == np.float32 and rg.pixels.ndim == 2
    assert 0.0 <= rg.pixels.min() < rg.pixels.max() <= 1.0
    assert rg.pixels.std() > 0.05
    assert rg.raw.shape == rg.pixels.shape
    assert rg.metadata.format == "DICOM" and rg.metadata.transfer_syntax


def test_jpeg2000_lossless_equals_uncompressed_exactly(shared_data):
    uncompressed = load_image(shared_data / "dicom" / "RG1_UNCR.dcm")
    lossless = load_image(shared_data / "dicom" / "RG1_J2KR.dcm")
    assert np.array_equal(uncompressed.raw, lossless.raw)
    assert np.array_equal(uncompressed.pixels, lossless.pixels)
    assert "1.2.840.10008.1.2.4.90" in lossless.metadata.transfer_syntax


def test_jpeg2000_lossy_is_close(shared_data):
    uncompressed = load_image(shared_data / "dicom" / "RG1_UNCR.dcm").raw
    lossy = load_image(shared_data / "dicom" / "RG1_J2KI.dcm").raw
    value_range = uncompressed.max() - uncompressed.min()
    mean_abs = np.abs(uncompressed - lossy).mean()
    assert 0 < mean_abs < 0.01 * value_range  # measured: about 0.1 % of the range
    assert np.corrcoef(uncompressed.ravel()[::97], lossy.ravel()[::97])[0, 1] > 0.99


def test_monochrome1_displays_as_the_inverse(shared_data):
    base = load_image(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")
    mono1 = load_image(shared_data / "dicom" / "rsna_cr_chest_fake_monochrome1.dcm")
    assert np.array_equal(base.raw, mono1.raw)  # the same stored pixels
    assert mono1.metadata.inverted and not base.metadata.inverted
    np.testing.assert_allclose(mono1.pixels, 1.0 - base.pixels, atol=1e-6)


def test_monochrome1_chest_shows_bright_bone_and_dark_lungs(shared_data):
    rg = load_image(shared_data / "dicom" / "RG1_UNCR.dcm")
    assert rg.metadata.photometric == "MONOCHROME1"
    h, w = rg.pixels.shape
    lung = rg.pixels[int(h * 0.35):int(h * 0.55), int(w * 0.2):int(w * 0.35)].mean()
    spine = rg.pixels[int(h * 0.35):int(h * 0.55), int(w * 0.47):int(w * 0.53)].mean()
    assert spine > lung + 0.05
    # with MONOCHROME1, high stored values are dark on screen
    assert np.corrcoef(rg.raw.ravel()[::101], rg.pixels.ravel()[::101])[0, 1] < -0.9


def test_metadata_read_from_the_header(shared_data):
    md = load_image(shared_data / "dicom" / "RG3_J2KI.dcm").metadata
    assert md.modality == "CR" and md.body_part == "EXTREMITY" and md.rows == md.columns == 1760
    assert md.window.source == "dicom" and md.window.center == 550 and md.window.width == 1024
    dog = load_image(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm").metadata
    assert dog.pixel_spacing == pytest.approx((1.2, 1.2012), abs=1e-3)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm", "nih_dx_secondary_capture.dcm",
                                  "highdicom_dx_animal_lateral.dcm"])
def test_identifying_tags_are_kept_apart(shared_data, name):
    path = shared_data / "dicom" / name
    rg = load_image(path)
    present = {e.keyword for e in pydicom.dcmread(path, stop_before_pixels=True) if e.keyword in IDENTIFYING_KEYWORDS}
    text = repr(rg.metadata) + repr(rg)
    for keyword in IDENTIFYING_KEYWORDS:
        assert keyword not in text
        assert all(keyword != row[1] for row in rg.metadata.dicom_tags)
    revealed = {row[1] for row in rg.all_tags(reveal_identifying=True)}
    assert present <= revealed
    assert {row[1] for row in rg.all_tags()}.isdisjoint(IDENTIFYING_KEYWORDS)


def test_free_text_about_the_patient_and_linking_uids_are_hidden_by_default(shared_data):
    """A GUI walk read AdditionalPatientHistory ("Damaged Mitral Valve") in the Tags tab with nothing revealed."""
    rg = load_image(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm")
    shown = rg.all_tags()
    assert not any("Mitral" in row[2] for row in shown)
    assert {"AdditionalPatientHistory", "StudyInstanceUID", "SOPInstanceUID"}.isdisjoint(row[1] for row in shown)
    assert any(row[1] == "AdditionalPatientHistory" for row in rg.all_tags(reveal_identifying=True))
    assert rg.metadata.study_instance_uid  # still read for grouping a study, never shown as a tag
