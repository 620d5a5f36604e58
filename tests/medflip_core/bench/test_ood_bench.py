"""Issue 31 item 5: `medflip bench ood` on real data and the bundled model, small (5 held-out chest films per data
set; every held-out non-chest image): the data sets are named with their counts, the held-out part is disjoint from
the reference and calibration parts, and the figures print against their targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from medflip_core.bench import BENCHMARKS
from medflip_core.bench.ood import (
    KERMANY,
    NIH,
    TBX,
    _take,
    chest_items,
    evaluate,
    format_result,
    main,
    part_of,
)
from medflip_core.errors import MedflipError


def test_bench_ood_names_its_data_and_meets_the_non_chest_target(shared_data):
    assert "ood" in BENCHMARKS
    result = evaluate(None, per_set=5)
    by_source = result["by_source"]
    assert {KERMANY, NIH, TBX} <= set(by_source) and all(by_source[s]["n"] == 5 for s in (KERMANY, NIH, TBX))
    for source in ("shared DICOM: lower-leg CR film", "MedFLIP app icon", "generated 8000x8000 noise PNG"):
        assert by_source[source]["n"] == 1 and by_source[source]["flagged"] == 1
    assert result["non_chest_images"] >= 50 and result["non_chest_caught_share"] >= 0.95
    assert result["inverted_films"] == 15 and result["inverted_flagged"] >= 13
    text = format_result(result)
    assert "target <= 2 %" in text and "target >= 95 %" in text and "distinct pictures" in text
    assert f"{KERMANY}" in text and "held-out (validate) part only" in text


def test_held_out_films_are_neither_reference_nor_calibration(shared_data):
    items = chest_items(shared_data)
    held_out = {i.path for i in _take(items, "validate", None)}
    used = {i.path for i in items if part_of(i) in ("reference", "calibrate")}
    assert held_out and used and not held_out & used
    patients = {(i.source, i.group) for i in items if i.path in held_out}
    assert not patients & {(i.source, i.group) for i in items if i.path in used}


def test_the_films_chosen_do_not_depend_on_where_the_data_lies(shared_data, tmp_path):
    """A fixed choice of films (the bundle's reference, the benches' small sizes) is the same on every machine: CI
    mounts the data elsewhere, and a choice keyed by the absolute path picked other films there."""
    elsewhere = tmp_path / "mounted" / "data"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(shared_data.resolve(), target_is_directory=True)

    def chosen(root: Path) -> list[str]:
        return [str(i.path.relative_to(root)) for i in _take(chest_items(root), "reference", 7)]

    here = chosen(shared_data)
    assert len(here) == 21 and here == chosen(elsewhere)


def test_an_unknown_model_is_one_sentence():
    with pytest.raises(MedflipError, match="no model bundle 'no-such-model'"):
        main(["--model", "no-such-model"])
    assert not Path("no-such-model").exists()

