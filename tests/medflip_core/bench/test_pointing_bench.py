"""`medflip bench pointing`: the heat-map's hottest patch against the TBX11K readers' tuberculosis boxes, on real
films and the shipped model; the patch-in-box geometry on a letterboxed (non-square) image."""

from __future__ import annotations

import numpy as np

from medflip_core.bench import BENCHMARKS
from medflip_core.bench.pointing import format_result, main, measure, patches_in_boxes, read_boxes


def test_patches_in_boxes_follow_the_letterbox():
    # a 100 (high) x 200 (wide) image letterboxed to a square of 4 x 4 patches: rows 0 and 3 are padding
    inside = patches_in_boxes((100, 200), (4, 4), [(0, 0, 99, 99)])  # the left half of the image
    assert inside.tolist() == [[False] * 4, [True, True, False, False], [True, True, False, False], [False] * 4]
    assert not patches_in_boxes((100, 200), (4, 4), []).any()


def test_the_shipped_models_maps_on_real_tbx11k_films(shared_data, capsys):
    assert "pointing" in BENCHMARKS
    folder = shared_data / "cxr-tb-tbx11k"
    boxes = read_boxes(folder)
    assert len(boxes) == 799 and sum(len(b) for b in boxes.values()) == 972 + 239
    result = measure(None, folder, ("Consolidation", "Pneumonia"), films=48, n_boot=50)
    assert result["films"] == 48 and result["grid"] == [14, 14]
    chance = result["chance"]["value"]
    assert 0.02 < chance < 0.3  # TB boxes cover a tenth of a film's patches, give or take
    hits = result["hottest_patch_in_box"]
    # measured on all 799 films: Consolidation's hottest patch lands in a box 4x as often as chance, Pneumonia's
    # almost never (its map peaks outside the lesions); on 48 films the order holds
    assert hits["Consolidation"]["value"] > chance > hits["Pneumonia"]["value"]
    text = format_result(result)
    assert "TBX11K" in text and "x chance" in text and "intervals over films" in text
    assert main(["--films", "16", "--labels", "Mass", "--n-boot", "20"]) == 0
    assert "Mass" in capsys.readouterr().out
    assert np.isfinite(hits["Consolidation"]["ci95"]).all()
