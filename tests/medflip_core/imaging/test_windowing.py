"""Window presets pick the same tissue on a MONOCHROME1 film as on the same film stored MONOCHROME2."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.imaging import load_image
from medflip_core.imaging.windowing import CHEST_PRESETS, preset_window, render


@pytest.mark.parametrize("name", list(CHEST_PRESETS))
def test_a_preset_shows_a_monochrome1_film_as_its_monochrome2_twin(shared_data, name):
    film = load_image(shared_data / "dicom" / "RG1_UNCR.dcm")  # a real MONOCHROME1 chest CR: high values are air
    assert film.metadata.inverted
    raw = film.raw.astype(np.float64)
    twin = raw.max() + raw.min() - raw  # the same film stored MONOCHROME2: high values are bone
    shown = render(raw, preset_window(raw, name, inverted=True), invert=True)
    shown_twin = render(twin, preset_window(twin, name), invert=False)
    assert np.abs(shown - shown_twin).mean() < 0.01
    # the bone preset leaves most of a chest film unclipped, as it does on MONOCHROME2 films (it washed RG1 out)
    if name == "Chest (bone)":
        assert (shown >= 0.999).mean() < 0.5
