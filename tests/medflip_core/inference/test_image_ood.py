"""Issue 31 item 5: the out-of-distribution check reads the image, not only its DICOM tags. On real images and the
bundled default model (its chest-film reference): the noise PNG, the app's colour logo, an inverted chest film and
the lower-leg film are flagged with a reason a person understands; real chest films of the three shared data
sets that are outside the reference are not; a bundle without the reference still gets the pixel checks."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medflip_core.bench.ood import Item, chest_items, part_of
from medflip_core.bundles.bundle import IMAGE_ONNX, OOD_REFERENCE_NPZ, load_bundle, refresh_file_list
from medflip_core.imaging import load_image
from medflip_core.inference.image_ood import (
    FAR,
    ChestReference,
    all_warnings,
    bundle_reference,
    image_warnings,
    layout_features,
    pixel_facts,
    pixel_reasons,
)
from medflip_core.resources import resources_dir

DEFAULT = resources_dir() / "models" / "medflip-default"


@pytest.fixture(scope="module")
def engine():
    from medflip_core.inference.engine import Engine

    return Engine(DEFAULT, threads=2, prefer_gpu=False)


def _warnings(engine, path: Path, invert: bool = False) -> list[str]:
    rg = load_image(path)
    pixels = 1.0 - rg.pixels if invert else rg.pixels
    embedded = engine.embed_images([pixels])
    return all_warnings(rg, pixels, embedded.embedding[0], engine.ood_reference,
                        layout_features(embedded.patch_tokens, embedded.grid))


def _pydicom_file(name: str) -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files" / name


def test_the_default_bundle_carries_a_reference_made_with_its_own_encoder(engine):
    ref = engine.ood_reference
    assert ref is not None and ref.mean.shape == (engine.bundle.embed_dim,)
    assert ref.components.shape == (32, engine.bundle.embed_dim) and np.all(ref.variances > 0)
    assert ref.encoder_sha256 == engine.bundle.manifest["files"][IMAGE_ONNX]["sha256"]
    assert np.isfinite(ref.threshold) and np.isfinite(ref.inverted_threshold)
    assert "Kermany" in ref.built_from and "NIH" in ref.built_from


def test_noise_png_of_8000_pixels_a_side_is_noise(engine, tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (8000, 8000), dtype=np.uint8)).save(
        noise, compress_level=1)
    found = _warnings(engine, noise)
    assert any(w.startswith("looks like noise") for w in found), found


def test_the_apps_own_colour_logo_is_a_colour_image(engine):
    found = _warnings(engine, resources_dir() / "icons" / "medflip.png")
    assert found[0].startswith("colour image") and "not a radiograph" in found[0]


def test_a_grey_chest_film_saved_as_colour_jpeg_is_not_called_colour(engine, shared_data, tmp_path):
    """JPEG noise makes the three channels of a grey film differ: the reader notes a conversion, the check measures
    how colourful the image really is."""
    film = shared_data / "cxr-nih-adult" / "images" / "00001280_004.jpg"
    grey = np.asarray(Image.open(film).convert("L"))
    rgb = np.stack([grey, grey, grey], axis=-1).astype(np.int16)
    rgb[..., 0] += 2  # a faint tint, as a scanner or a viewer's export leaves
    path = tmp_path / "tinted.jpg"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=85)
    rg = load_image(path)
    assert "colour image converted to grey" in rg.notes
    assert not pixel_facts(rg.pixels, rg.metadata, rg.notes).colour
    assert _warnings(engine, path) == []


def test_small_elongated_and_blank_images(shared_data):
    mr = load_image(_pydicom_file("MR_small.dcm"))
    assert pixel_reasons(pixel_facts(mr.pixels, mr.metadata, mr.notes))[0].startswith("too small for a radiograph")
    nm = load_image(_pydicom_file("JPEG2000.dcm"))  # a whole-body nuclear medicine scan, 256x1024
    assert any(r.startswith("too elongated") for r in pixel_reasons(pixel_facts(nm.pixels, nm.metadata)))
    blank = np.full((512, 512), 0.5, dtype=np.float32)
    assert pixel_reasons(pixel_facts(blank, mr.metadata))[-1].startswith("nearly blank")
    with pytest.raises(ValueError, match="2-D image"):
        pixel_facts(np.zeros((4, 4, 3), np.float32), mr.metadata)


def test_the_lower_leg_film_does_not_look_like_a_chest_film(engine, shared_data):
    """Its tag says EXTREMITY; the content check says so without the tag (as for a PNG of it)."""
    rg = load_image(shared_data / "dicom" / "RG3_J2KI.dcm")
    embedded = engine.embed_images([rg])
    found = image_warnings(rg.pixels, rg.metadata, rg.notes, embedded.embedding[0], engine.ood_reference,
                           layout_features(embedded.patch_tokens, embedded.grid))
    assert found and found[0].startswith(FAR)


def test_inverted_chest_films_are_said_to_look_inverted(engine, shared_data):
    """rsna_cr_chest_fake_monochrome1.dcm is a real chest film whose file says MONOCHROME1 wrongly: displayed as
    the file says, it is inverted."""
    found = _warnings(engine, shared_data / "dicom" / "rsna_cr_chest_fake_monochrome1.dcm")
    assert any("inverted" in w for w in found), found
    assert _warnings(engine, shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm") == []
    nih = shared_data / "cxr-nih-adult" / "images" / "00001280_004.jpg"
    assert any("inverted" in w for w in _warnings(engine, nih, invert=True))


def test_held_out_chest_films_of_each_data_set_are_not_flagged(engine, shared_data):
    """Ten films per data set from the validate part (patients in neither the reference nor the calibration),
    and the real chest DICOMs."""
    items = [i for i in chest_items(shared_data) if part_of(i) == "validate"]
    for source in dict.fromkeys(i.source for i in items):
        for item in [i for i in items if i.source == source][:10]:
            assert _warnings(engine, item.path) == [], item.path
    for name in ("RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm", "nih_dx_secondary_capture.dcm"):
        assert _warnings(engine, shared_data / "dicom" / name) == [], name


def test_the_split_keeps_a_patient_in_one_part(shared_data):
    items = chest_items(shared_data)
    parts: dict[tuple[str, str], set[str]] = {}
    for item in items:
        parts.setdefault((item.source, item.group), set()).add(part_of(item))
    assert all(len(p) == 1 for p in parts.values())
    assert {part_of(i) for i in items} == {"reference", "calibrate", "validate"}
    assert part_of(Item("x", Path("a"), "leg", False)) in ("choose", "validate")


def test_a_bundle_without_the_reference_keeps_the_pixel_checks(tmp_path, shared_data):
    from medflip_core.inference.engine import Engine

    bundle = tmp_path / "no-reference"
    shutil.copytree(DEFAULT, bundle)
    (bundle / OOD_REFERENCE_NPZ).unlink()
    refresh_file_list(bundle)
    engine = Engine(bundle, threads=2, prefer_gpu=False)
    assert engine.ood_reference is None
    assert _warnings(engine, shared_data / "dicom" / "RG1_UNCR.dcm") == []
    assert _warnings(engine, resources_dir() / "icons" / "medflip.png")[0].startswith("colour image")
    leg = _warnings(engine, shared_data / "dicom" / "RG3_J2KI.dcm")  # the tags still speak; the embedding cannot
    assert any("EXTREMITY" in w for w in leg) and not any(w.startswith("does not look") for w in leg)


def test_a_reference_from_another_encoder_or_a_damaged_one_is_ignored(tmp_path):
    bundle = tmp_path / "other"
    shutil.copytree(DEFAULT, bundle)
    ref = ChestReference.load(bundle / OOD_REFERENCE_NPZ)
    replace(ref, encoder_sha256="0" * 64).save(bundle / OOD_REFERENCE_NPZ)
    refresh_file_list(bundle)
    assert bundle_reference(load_bundle(bundle)) is None
    (bundle / OOD_REFERENCE_NPZ).write_bytes(b"not an npz file")
    refresh_file_list(bundle)
    assert bundle_reference(load_bundle(bundle)) is None
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert OOD_REFERENCE_NPZ in manifest["files"]


def test_writing_a_reference_makes_a_generated_card_say_so(tmp_path):
    from medflip_core.bench.ood import write_reference
    from medflip_core.bundles.model_card import clip_model_card

    bundle = tmp_path / "to-refer"
    shutil.copytree(DEFAULT, bundle)
    (bundle / OOD_REFERENCE_NPZ).unlink()
    refresh_file_list(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "MODEL_CARD.md").write_text(clip_model_card(manifest), encoding="utf-8")
    refresh_file_list(bundle)
    assert "has no chest-film reference" in (bundle / "MODEL_CARD.md").read_text(encoding="utf-8")
    figures = write_reference(bundle, per_set=6, calibrate_per_set=6)
    assert sum(figures["reference_films"].values()) == 18 and figures["components"] == 17  # 18 films: 17 directions
    assert figures["non_chest_choose_images"] > 20 and figures["layout_margin"] >= 1.0
    assert np.isfinite(figures["layout_threshold"])
    card = load_bundle(bundle, verify=True).model_card()  # the card and the reference are in the verified list
    assert "ood_reference.npz" in card and "has no chest-film reference" not in card
    assert bundle_reference(load_bundle(bundle)) is not None


def test_near_and_inverted_says_inverted_far_and_inverted_says_both(engine):
    """Most inverted chest films are also far from the upright ones, and a far film can lie along the inverted
    direction (v4's lower-leg film does): then the warning names both possibilities, far first. Far is judged by
    the layout; a reference made before the layout check (no layout part) judges by the embedding."""
    from medflip_core.inference.image_ood import embedding_reasons

    ref = engine.ood_reference
    step = 1.5 * ref.inverted_threshold  # a little past the threshold, along the discriminant, from the mean
    near = ref.mean + step * ref.inverted_direction
    chest_layout = ref.layout.mean
    far_layout = chest_layout + 100 * ref.layout.components[-1] * np.sqrt(ref.layout.variances[-1])
    assert ref.layout_distance(chest_layout[None])[0] <= ref.layout_threshold < ref.layout_distance(far_layout[None])[0]
    assert embedding_reasons(near, ref, chest_layout)[0].startswith("looks inverted")
    assert embedding_reasons(ref.mean, ref, chest_layout) == []
    said = embedding_reasons(near, ref, far_layout)
    assert len(said) == 1 and said[0].startswith(FAR) and "inverted" in said[0]
    assert embedding_reasons(ref.mean, ref, far_layout)[0].startswith(FAR + ", so its scores may not hold: another")
    with pytest.raises(ValueError, match="patch tokens"):  # a caller that forgot the layout is told, not ignored
        embedding_reasons(ref.mean, ref)

    older = replace(ref, layout=None)
    assert older.distance(near[None])[0] <= older.threshold
    assert embedding_reasons(near, older)[0].startswith("looks inverted")
    assert embedding_reasons(older.mean, older) == []
    leg_like = near + 40 * older.components[-1] * np.sqrt(older.variances[-1])  # far along a reference direction
    assert older.distance(leg_like[None])[0] > older.threshold
    said = embedding_reasons(leg_like, older, far_layout)  # the layout plays no part for an older reference
    assert len(said) == 1 and said[0].startswith(FAR) and "inverted" in said[0]


def test_layout_features_average_the_patch_tokens_over_a_three_by_three_grid():
    rows, cols, dim = 14, 14, 4
    tokens = np.zeros((rows, cols, dim), np.float32)
    for i in range(rows):
        for j in range(cols):
            tokens[i, j] = [i, j, 1.0, i * cols + j]
    layout = layout_features(tokens.reshape(rows * cols, dim), (rows, cols))
    assert layout.shape == (1, 9 * dim)
    cells = layout.reshape(9, dim)
    top_left = tokens[:4, :4].reshape(-1, dim).mean(axis=0)  # 14 // 3 = 4: the first cell is rows and columns 0-3
    bottom_right = tokens[9:, 9:].reshape(-1, dim).mean(axis=0)
    assert np.allclose(cells[0], top_left) and np.allclose(cells[8], bottom_right)
    assert np.allclose(layout_features(np.stack([tokens.reshape(-1, dim)] * 2), (rows, cols)), layout)
    with pytest.raises(ValueError, match="do not fit a 13x14 grid"):
        layout_features(tokens.reshape(rows * cols, dim), (13, 14))


def test_a_reference_saved_before_the_layout_check_still_loads_and_judges_by_the_embedding(tmp_path, engine,
                                                                                           shared_data):
    older = replace(engine.ood_reference, layout=None)
    older.save(tmp_path / "old.npz")
    loaded = ChestReference.load(tmp_path / "old.npz")
    assert loaded.layout is None and np.isinf(loaded.layout_threshold)
    rg = load_image(shared_data / "dicom" / "RG1_UNCR.dcm")
    emb = engine.embed_images([rg]).embedding
    assert loaded.far(emb, None)[0] == (engine.ood_reference.distance(emb)[0] > loaded.threshold)
    engine.ood_reference.save(tmp_path / "new.npz")
    again = ChestReference.load(tmp_path / "new.npz")
    assert again.layout is not None and again.layout_threshold == engine.ood_reference.layout_threshold
    assert np.array_equal(again.layout.components, engine.ood_reference.layout.components)
    assert again.layout_margin == engine.ood_reference.layout_margin > 1.0


def test_the_inversion_threshold_sits_in_the_gap_when_there_is_one():
    from medflip_core.bench.ood import inversion_threshold

    upright, inverted = np.linspace(-1.0, 1.0, 1001), np.linspace(3.0, 5.0, 1001)
    assert inversion_threshold(upright, inverted) == pytest.approx((0.99 + 3.01) / 2)
    assert inversion_threshold(upright, np.linspace(0.5, 2.5, 1001)) == pytest.approx(0.99)  # overlap: upright's
