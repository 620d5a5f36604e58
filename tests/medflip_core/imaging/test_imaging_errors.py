"""Bad input: one error type, a message naming the file and the problem, never a traceback."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medflip_core.errors import ImageLoadError
from medflip_core.imaging import load_image


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.dcm")
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.dcm: the file is empty"):
        load_image(tmp_path / "empty.dcm")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_dicom(shared_data, tmp_path):
    data = (shared_data / "dicom" / "RG1_UNCR.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:2048])
    with pytest.raises(ImageLoadError, match=r"cut\.dcm"):
        load_image(tmp_path / "cut.dcm")


def test_truncated_jpeg_and_non_images(shared_data, tmp_path):
    jpeg = (shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()
    (tmp_path / "cut.jpeg").write_bytes(jpeg[: len(jpeg) // 3])
    with pytest.raises(ImageLoadError, match=r"cut\.jpeg: this JPEG image is truncated"):
        load_image(tmp_path / "cut.jpeg")
    (tmp_path / "notes.dcm").write_text("this is a text file, not DICOM\n" * 10)
    with pytest.raises(ImageLoadError, match=r"notes\.dcm: not a DICOM file"):
        load_image(tmp_path / "notes.dcm")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ImageLoadError, match=r"noise\.png: neither a DICOM file nor a PNG, JPEG"):
        load_image(tmp_path / "noise.png")


def test_dicom_without_pixel_data_names_its_sop_class(tmp_path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(tmp_path / "report.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(ImageLoadError, match=r"report\.dcm: .*contains no image\. It is a Basic Text SR"):
        load_image(tmp_path / "report.dcm")


def test_unsupported_transfer_syntax_names_it(shared_data, tmp_path):
    ds = pydicom.dcmread(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder for it here
    ds.save_as(tmp_path / "video.dcm")
    with pytest.raises(ImageLoadError, match=r"video\.dcm: this DICOM image is compressed as MPEG2 .*cannot decode"):
        load_image(tmp_path / "video.dcm")


def test_pixel_limit_checked_before_decoding(shared_data, tmp_path):
    with pytest.raises(ImageLoadError, match="above the limit of 1,000 pixels"):
        load_image(shared_data / "dicom" / "RG1_J2KR.dcm", max_pixels=1000)
    Image.new("L", (400, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match=r"big\.png: the image is 400x300 pixels, above the limit"):
        load_image(tmp_path / "big.png", max_pixels=100_000)


def test_header_claiming_a_huge_image(shared_data, tmp_path):
    shutil.copy(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm", tmp_path / "bomb.dcm")
    ds = pydicom.dcmread(tmp_path / "bomb.dcm")
    ds.Rows, ds.Columns = 60000, 60000
    ds.save_as(tmp_path / "bomb.dcm")
    with pytest.raises(ImageLoadError, match="decompression bombs"):
        load_image(tmp_path / "bomb.dcm")
