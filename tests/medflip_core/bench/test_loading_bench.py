"""The loading benchmark's DICOM folder: real chest DICOMs, linked into an ImageFolder the trainer reads."""

from __future__ import annotations

from medflip_core.bench.loading import CHEST_DICOMS, dicom_folder
from medflip_core.data.image_folder import index_image_folder
from medflip_core.imaging import load_image


def test_dicom_folder_links_every_chest_dicom_under_both_classes(shared_data, tmp_path):
    n = dicom_folder(shared_data / "dicom", tmp_path, copies=3)
    assert n == 3 * len(CHEST_DICOMS)
    records = index_image_folder(tmp_path)
    assert len(records) == n and {r.class_name for r in records} == {"NORMAL", "PNEUMONIA"}
    for name in CHEST_DICOMS:  # every file appears under both classes across the copies
        assert {r.class_name for r in records if r.path.name.endswith(name)} == {"NORMAL", "PNEUMONIA"}
    image = load_image(next(r.path for r in records if r.path.name.endswith("RG1_UNCR.dcm")))
    assert image.pixels.shape == (1955, 1841)


def test_decode_only_times_every_file_in_the_three_modes(shared_data, capsys):
    from medflip_core.bench.loading import decode_rates, print_decode_rates

    files = [shared_data / "dicom" / name for name in ("rsna_cr_chest_jpeg_baseline.dcm", "RG1_J2KI.dcm")]
    result = decode_rates(files, repeats=2, workers=2, rounds=1, image_size=64)
    assert set(result["files"]) == {f.name for f in files}
    for rates in result["files"].values():
        assert set(rates) == {"serial", "threads", "processes"} and all(r > 0 for r in rates.values())
    print_decode_rates(result)
    out = capsys.readouterr().out
    assert "RG1_J2KI.dcm" in out and "worker processes" in out
