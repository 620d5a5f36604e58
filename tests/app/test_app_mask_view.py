"""The mask view shows exactly what a training step keeps: same preprocessing, same algorithm, same seed."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.imaging import load_image


@pytest.mark.parametrize(("ratio", "seed"), [(75, 0), (50, 3), (90, 11), (0, 5)])
def test_kept_patches_equal_the_trainers(window, shared_data, ratio, seed):
    from medflip_core.model.image_tower import mask_for_batch

    view = window.mask_view
    view.set_radiograph(load_image(shared_data / "dicom" / "RG1_J2KI.dcm"))
    view.ratio.setValue(ratio)
    view.seed.setValue(seed)
    total = 14 * 14
    kept = view.kept_patches()
    assert len(kept) == round(total * (1 - ratio / 100))
    assert f"{len(kept)} of {total} patches kept" in view.counts.text()
    trainer_keep = mask_for_batch(1, total, ratio / 100, seed)
    expected = np.arange(total) if trainer_keep is None else trainer_keep.numpy()[0]
    assert np.array_equal(kept, expected)


def test_resample_draws_a_new_mask_and_overlay_matches(window, shared_data):
    view = window.mask_view
    view.set_radiograph(load_image(shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"))
    first = view.kept_patches().copy()
    view.seed.setValue(view.seed.value() + 1)
    assert not np.array_equal(first, view.kept_patches())
    overlay = view.overlay.image
    assert overlay.shape[:2] == (224, 224)
    # a kept patch is clear inside (alpha 0 away from the grid lines), a dropped one shaded
    kept = set(view.kept_patches().tolist())
    dropped = next(i for i in range(196) if i not in kept)
    keep_one = next(iter(kept))
    for index, shaded in ((keep_one, False), (dropped, True)):
        r, c = divmod(index, 14)
        alpha = overlay[r * 16 + 8, c * 16 + 8, 3]
        assert (alpha > 0) == shaded
