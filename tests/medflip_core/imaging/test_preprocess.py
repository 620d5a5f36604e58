from __future__ import annotations

import numpy as np

from medflip_core.imaging import load_image
from medflip_core.imaging.preprocess import PreprocessConfig, letterbox_geometry, preprocess, preprocess_batch


def test_aspect_preserving_letterbox_and_normalisation():
    cfg = PreprocessConfig(image_size=224, mean=0.5, std=0.25, pad_value=0.0)
    out = preprocess(np.full((100, 200), 0.75, dtype=np.float32), cfg)
    assert out.shape == (1, 224, 224) and out.dtype == np.float32
    scale, new_h, new_w, top, left = letterbox_geometry(100, 200, 224)
    assert (new_h, new_w, top, left) == (112, 224, 56, 0) and scale == 224 / 200
    content = out[0, top:top + new_h]
    np.testing.assert_allclose(content, (0.75 - 0.5) / 0.25, atol=1e-6)
    np.testing.assert_allclose(out[0, :top], (0.0 - 0.5) / 0.25)
    np.testing.assert_allclose(out[0, top + new_h:], (0.0 - 0.5) / 0.25)


def test_real_dicom_is_shrunk_with_area_averaging(shared_data):
    rg = load_image(shared_data / "dicom" / "RG1_UNCR.dcm")  # 1841 x 1955
    cfg = PreprocessConfig()
    out = preprocess(rg, cfg)[0] * cfg.std + cfg.mean
    _, new_h, new_w, top, left = letterbox_geometry(*rg.pixels.shape, 224)
    assert new_h == 224 and left > 0
    inside = out[top:top + new_h, left:left + new_w]
    assert abs(inside.mean() - rg.pixels.mean()) < 0.01  # area averaging keeps the mean brightness
    assert np.array_equal(preprocess(rg, cfg), preprocess(rg, cfg))


def test_batch_and_config_round_trip(shared_data):
    images = [load_image(shared_data / "dicom" / n) for n in ("RG3_J2KI.dcm", "highdicom_dx_animal_lateral.dcm")]
    cfg = PreprocessConfig(image_size=112)
    batch = preprocess_batch(images, cfg)
    assert batch.shape == (2, 1, 112, 112)
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    assert preprocess_batch([], cfg).shape == (0, 1, 112, 112)
