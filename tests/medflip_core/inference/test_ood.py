from __future__ import annotations

from medflip_core.imaging import load_image
from medflip_core.inference.ood import out_of_distribution


def test_flags_from_real_metadata(shared_data):
    leg = out_of_distribution(load_image(shared_data / "dicom" / "RG3_J2KI.dcm").metadata)
    assert any("EXTREMITY is not a chest" in f for f in leg)
    dog = out_of_distribution(load_image(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm").metadata)
    assert any("not a human" in f for f in dog) and any("lateral view" in f for f in dog)
    for name in ("RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm", "nih_dx_secondary_capture.dcm"):
        assert out_of_distribution(load_image(shared_data / "dicom" / name).metadata) == []
    jpeg = shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"
    assert out_of_distribution(load_image(jpeg).metadata) == []
