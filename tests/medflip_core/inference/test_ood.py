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


def test_a_table_cell_names_the_content_warning_in_a_few_words_and_the_warning_says_its_consequence_first():
    """A GUI walk: the Batch cell read "⚠ this… films" and the Zero-shot line "…and lies on th…", with "may not
    hold" only in the tooltip."""
    import numpy as np

    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine
    from medflip_core.inference.image_ood import FAR, FAR_BRIEF, embedding_reasons, layout_features
    from medflip_core.inference.ood import brief

    engine = Engine(resolve_model(None), threads=1)
    ref = engine.ood_reference
    far_layout = ref.layout.mean + 100 * ref.layout.components[-1]
    said = embedding_reasons(ref.mean, ref, far_layout)
    assert said[0].startswith(f"{FAR}, so its scores may not hold")
    assert brief([*said, "lateral view: the model has only seen frontal films"]) == f"{FAR_BRIEF}; lateral view"
    assert layout_features(np.zeros((196, 4), np.float32), engine.grid).shape == (1, 36)
