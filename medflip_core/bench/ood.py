"""The image-content out-of-distribution check (medflip_core.inference.image_ood), measured on real images.

    medflip bench ood [--model medflip-default] [--per-set 300] [--json]
    medflip bench ood --write-reference resources/models/medflip-default   (builds the bundle's reference)
    medflip bench ood --leave-one-source-out   (each chest source in turn as a hospital outside the reference)

Chest films: the shared data's Kermany (pediatric), NIH ChestX-ray14 (adult) and TBX11K (adult) sets, split by
patient (a hash of data set and patient id: fixed, no seed) into three parts: `reference` (the embeddings kept in
the bundle: their mean and principal directions), `calibrate` (chest films outside the reference: the distance
threshold is their 99th percentile, the inversion threshold their 99.5th) and `validate` (used for nothing but
this benchmark's figures); the layout threshold's margin is chosen, source by source left out, on the `choose`
half of the non-chest images (layout_margin). Non-chest images: real images that ship inside installed packages and
the shared
data (the lower-leg CR film, the dog's thorax, pydicom's CT, MR,
NM, ultrasound and secondary-capture test files, scikit-learn's photographs, pyqtgraph's and PySide6's pictures,
plots from networkx and sympy tests, this app's icon) plus one generated 8000x8000 noise PNG, split by content
group (copies of one picture in several encodings stay together) into `choose` and `validate` halves. The figures
printed are on the validate parts only: chest films wrongly flagged (target <= 2 %), non-chest images caught
(target >= 95 %), and the validate chest films inverted (bones dark), which should be flagged too.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.inference.image_ood import ChestReference
from medflip_core.resources import default_shared_data, resources_dir

log = logging.getLogger(__name__)

KERMANY, NIH, TBX = "Kermany pediatric (Guangzhou)", "NIH ChestX-ray14 adult", "TBX11K adult (China)"
REFERENCE_COMPONENTS = 32
REFERENCE_PER_SET = 400  # reference films per chest data set
CALIBRATE_FPR = 0.01  # the embedding threshold: this share of the calibration chest films falls below it
NOISE_SIDE = 8000


@dataclass(frozen=True)
class Item:
    source: str  # the data set, as printed
    path: Path
    group: str  # the unit of the split: a patient, or a content group (one picture in several files)
    chest: bool


def _fraction(key: str) -> float:
    """A fixed pseudo-random number in [0, 1) for a key: the split needs no seed and never changes."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 16**8


def part_of(item: Item) -> str:
    """"reference" / "calibrate" / "validate" for a chest film (by patient: 40 / 20 / 40 %); "choose" /
    "validate" for a non-chest image (by content group, half and half)."""
    x = _fraction(f"{item.source}|{item.group}")
    if not item.chest:
        return "choose" if x < 0.5 else "validate"
    return "reference" if x < 0.4 else "calibrate" if x < 0.6 else "validate"


def chest_items(shared: Path) -> list[Item]:
    """Every chest film of the three shared chest data sets, with its patient."""
    from medflip_core.data.image_folder import patient_id_from_name

    items = []
    kermany = shared / "cxr-pneumonia-kermany" / "train"
    for path in sorted(kermany.glob("*/*.jpeg")):
        items.append(Item(KERMANY, path, patient_id_from_name(path.name), True))
    nih = shared / "cxr-nih-adult"
    with open(nih / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            items.append(Item(NIH, nih / "images" / row["Image Index"], row["Patient ID"], True))
    for path in sorted((shared / "cxr-tb-tbx11k" / "images").glob("*.jpg")):
        items.append(Item(TBX, path, path.stem, True))  # one image per patient, says the release
    missing = [i.path for i in items if not i.path.is_file()]
    if not items or missing:
        raise MedflipError(f"the shared chest films are not all there under {shared} "
                           f"({len(missing)} of {len(items)} missing); set MEDFLIP_SHARED_DATA.")
    return items


def _site_packages() -> Path:
    import pydicom

    return Path(pydicom.__file__).resolve().parents[1]


_ENCODING_SUFFIX = re.compile(r"(_(RLE|bigendian|expb|implicit|jp2klossless|jpeg_ls_lossless|padded|1frame|2frame|"
                              r"16bit|32bit|lossy_gdcm|jpeg_gdcm|jpeg_dcmtk|jpeg_dcmd|jpeg_app14_dcmd|gdcm_KY|"
                              r"dcmtk_.*|jls_lossy_.*|rle.*|jpeg|small_odd.*|\d+)$|@\dx$|_\d+px$)")


def _group(stem: str) -> str:
    """A content group from a file name: the encodings of one test picture, the sizes of one icon."""
    previous = None
    while previous != stem:
        previous, stem = stem, _ENCODING_SUFFIX.sub("", stem)
    return stem


def non_chest_items(noise_dir: Path) -> list[Item]:
    """Real non-chest images found on this machine, and a generated noise PNG written into `noise_dir`."""
    shared = default_shared_data() / "dicom"
    items = [Item("shared DICOM: lower-leg CR film", shared / "RG3_J2KI.dcm", "leg", False),
             Item("shared DICOM: dog thorax, lateral DX", shared / "highdicom_dx_animal_lateral.dcm", "dog", False)]
    site = _site_packages()
    pydicom_files = site / "pydicom" / "data" / "test_files"
    for path in sorted(pydicom_files.glob("*.dcm")):
        stem = path.stem
        group = ("JPEG NM whole body" if stem in ("JPEG-lossy", "JPEG2000", "JPGExtended")
                 else "SC rgb" if stem.startswith("SC_rgb") else "rtdose" if stem.startswith("rtdose")
                 else "liver" if stem.startswith("liver") else _group(stem))
        items.append(Item("pydicom test files (CT, MR, NM, US, SC, RT)", path, group, False))
    pictures = [(site / "sklearn" / "datasets" / "images", "*.jpg", "scikit-learn photographs"),
                (site / "scipy" / "ndimage" / "tests", "*.png", "scipy test picture"),
                (site / "pyqtgraph" / "icons", "**/*.png", "pyqtgraph icons and logo"),
                (site / "networkx" / "drawing" / "tests" / "baseline", "*.png", "networkx plot baselines"),
                (site / "sympy" / "plotting" / "tests", "*.png", "sympy plot baselines"),
                (resources_dir() / "icons", "*.png", "MedFLIP app icon")]
    for folder, pattern, source in pictures:
        for path in sorted(folder.glob(pattern)):
            items.append(Item(source, path, _group(path.stem), False))
    pyside = site / "PySide6"
    for path in sorted(pyside.rglob("*.png")) + sorted(pyside.rglob("*.jpg")):
        if _min_side(path) >= 128:  # PySide6's pictures big enough to be mistaken for an image (not icons)
            items.append(Item("PySide6 pictures (>= 128 px)", path, _group(path.stem.replace("-disabled", "")
                                                                            .replace("-hovered", "")), False))
    noise = noise_dir / f"noise_{NOISE_SIDE}x{NOISE_SIDE}.png"
    if not noise.is_file():
        from PIL import Image

        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (NOISE_SIDE, NOISE_SIDE), dtype=np.uint8)).save(noise, compress_level=1)
    items.append(Item("generated 8000x8000 noise PNG", noise, "noise", False))
    return [i for i in items if i.path.is_file()]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Decoder libraries (libjpeg, OpenJPEG) print to the process's stderr about pydicom's deliberately broken test
    files; each unreadable file is logged as a sentence instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _min_side(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return min(image.size)
    except OSError:
        return 0


@dataclass
class Measured:
    item: Item
    pixel_reasons: list[str]
    embedding: np.ndarray  # (D,)
    layout: np.ndarray  # (K,) image_ood.layout_features of its patch tokens
    inverted_embedding: np.ndarray | None = None  # (D,) of the same film inverted (chest films only)
    inverted_layout: np.ndarray | None = None  # (K,) of the same film inverted


def measure(engine, items: Sequence[Item], invert: bool = False) -> Iterator[Measured]:
    """Load each image (unreadable ones are skipped, logged), run the pixel checks and embed it; with `invert`
    also embed the film inverted."""
    from medflip_core.imaging import load_image
    from medflip_core.inference.image_ood import layout_features, pixel_facts, pixel_reasons

    for item in items:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rg = load_image(item.path)
        except MedflipError as exc:
            log.info("skipped %s: %s", item.path.name, exc)
            continue
        pixels = rg.pixels
        reasons = pixel_reasons(pixel_facts(pixels, rg.metadata, rg.notes))
        batch = [pixels, 1.0 - pixels] if invert else [pixels]
        out = engine.embed_images(batch)
        emb, layout = out.embedding, layout_features(out.patch_tokens, out.grid)
        yield Measured(item, reasons, emb[0], layout[0], emb[1] if invert else None, layout[1] if invert else None)


def _choice_key(item: Item) -> float:
    return _fraction(f"{item.source}|{item.path.parent.name}/{item.path.name}")


def _take(items: list[Item], part: str, per_set: int | None) -> list[Item]:
    """The items of one part, at most `per_set` per data set (a fixed choice: sorted by a hash of the file's name
    and folder, never of the absolute path, so the same films are chosen wherever the data lies)."""
    chosen = [i for i in items if part_of(i) == part]
    if per_set is None:
        return chosen
    out: list[Item] = []
    for source in dict.fromkeys(i.source for i in chosen):
        of_source = sorted((i for i in chosen if i.source == source), key=_choice_key)
        out.extend(of_source[:per_set])
    return out


def inversion_threshold(upright: np.ndarray, inverted: np.ndarray) -> float:
    """Where "looks inverted" starts, on calibration films: the middle of the gap between the upright films' 99.5th
    percentile and the inverted films' 0.5th when the two are apart (an upright film said to be inverted is a
    false alarm, so the upright side is the one bounded), else the upright 99.5th percentile."""
    high_upright = float(np.quantile(upright, 1 - CALIBRATE_FPR / 2))
    low_inverted = float(np.quantile(inverted, CALIBRATE_FPR / 2))
    return (high_upright + low_inverted) / 2 if low_inverted > high_upright else high_upright


LAYOUT_MARGIN_SAFETY = 0.9  # the layout threshold stays this far inside the nearest non-chest image (see below)


def _stack(measured: Sequence[Measured], what: str) -> np.ndarray:
    return np.stack([getattr(m, what) for m in measured])


def fold_reference(ref: Sequence[Measured], cal: Sequence[Measured], encoder_sha256: str = "",
                   margin: float | None = None, non_chest: Sequence[Measured] = ()) -> ChestReference:
    """A reference fitted on `ref` with its thresholds chosen on `cal`: the embedding's distance and the layout's
    at the calibration films' 99th percentile (the layout's times `margin`, or, when `margin` is None, times the
    margin layout_margin chooses with `non_chest`), the inversion projection by inversion_threshold."""
    counts = Counter(m.item.source for m in ref)
    provisional = ChestReference.fit(_stack(ref, "embedding"), _stack(ref, "inverted_embedding"),
                                     REFERENCE_COMPONENTS, encoder_sha256,
                                     ", ".join(f"{n} {s}" for s, n in counts.items()), _stack(ref, "layout"))
    cal_emb = _stack(cal, "embedding")
    threshold = float(np.quantile(provisional.distance(cal_emb), 1 - CALIBRATE_FPR))
    base = float(np.quantile(provisional.layout_distance(_stack(cal, "layout")), 1 - CALIBRATE_FPR))
    inverted_threshold = inversion_threshold(provisional.inversion(cal_emb),
                                             provisional.inversion(_stack(cal, "inverted_embedding")))
    if margin is None:
        margin = layout_margin(ref, cal, non_chest)
    return provisional.with_thresholds(threshold, inverted_threshold, base * margin, margin)


def layout_margin(ref: Sequence[Measured], cal: Sequence[Measured], non_chest: Sequence[Measured]) -> float:
    """How far beyond the calibration films' 99th percentile the layout threshold sits, chosen as a new
    hospital would meet it: for each chest source, a reference fitted without it; the margin is the largest that
    still flags every non-chest image of the choose half the pixel checks miss, in every such fold, times
    LAYOUT_MARGIN_SAFETY. 1 when no such image is given (the plain 99th percentile)."""
    missed = [m for m in non_chest if not m.pixel_reasons]
    if not missed:
        return 1.0
    nearest = []
    for left in dict.fromkeys(m.item.source for m in ref):
        fold = fold_reference([m for m in ref if m.item.source != left], [m for m in cal if m.item.source != left],
                              margin=1.0)
        nearest.append(float(np.min(fold.layout_distance(_stack(missed, "layout")) / fold.layout_threshold)))
    return max(1.0, LAYOUT_MARGIN_SAFETY * min(nearest))


def _embedded_non_chest(engine, part: str) -> list[Measured]:
    with tempfile.TemporaryDirectory(prefix="medflip-ood-") as tmp, _quiet_stderr():
        return list(measure(engine, _take(non_chest_items(Path(tmp)), part, None)))


def write_reference(bundle_dir: Path, per_set: int = REFERENCE_PER_SET, calibrate_per_set: int = 300) -> dict:
    """Build the bundle's chest-film reference from the `reference` part, choose its thresholds on the
    `calibrate` part (the layout's margin with the `choose` half of the non-chest images, layout_margin), write
    ood_reference.npz into the bundle and refresh its file list."""
    from medflip_core.bundles.bundle import IMAGE_ONNX, OOD_REFERENCE_NPZ, refresh_file_list, sha256_file
    from medflip_core.bundles.model_card import clip_card_is_current, write_clip_card
    from medflip_core.inference.engine import Engine

    engine = Engine(bundle_dir, threads=None, prefer_gpu=False)
    items = chest_items(default_shared_data())
    ref = list(measure(engine, _take(items, "reference", per_set), invert=True))
    cal = list(measure(engine, _take(items, "calibrate", calibrate_per_set), invert=True))
    choose = _embedded_non_chest(engine, "choose")
    reference = fold_reference(ref, cal, sha256_file(Path(bundle_dir) / IMAGE_ONNX), None, choose)
    card_was_generated = clip_card_is_current(Path(bundle_dir))
    reference.save(Path(bundle_dir) / OOD_REFERENCE_NPZ)
    refresh_file_list(bundle_dir)
    if card_was_generated:  # the card says whether the bundle has the reference: generate it again
        write_clip_card(Path(bundle_dir))
    cal_inv = _stack(cal, "inverted_embedding")
    return {"reference_films": dict(Counter(m.item.source for m in ref)),
            "calibration_films": dict(Counter(m.item.source for m in cal)),
            "components": int(reference.components.shape[0]), "distance_threshold": reference.threshold,
            "layout_threshold": reference.layout_threshold, "layout_margin": reference.layout_margin,
            "non_chest_choose_images": len(choose), "inverted_threshold": reference.inverted_threshold,
            "calibration_inverted_said_inverted": float(np.mean(reference.inversion(cal_inv)
                                                                > reference.inverted_threshold)),
            "calibration_inverted_far": float(np.mean(reference.far(cal_inv, _stack(cal, "inverted_layout"))))}


def evaluate(model: str | None, per_set: int | None) -> dict:
    """The validate parts' figures (the pixel checks and the model's reference together, as the app shows them)."""
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine
    from medflip_core.inference.image_ood import embedding_reasons

    engine = Engine(resolve_model(model), prefer_gpu=False)
    reference = engine.ood_reference

    def flags(m: Measured, inverted: bool = False) -> list[str]:
        if inverted:
            return m.pixel_reasons + embedding_reasons(m.inverted_embedding, reference, m.inverted_layout)
        return m.pixel_reasons + embedding_reasons(m.embedding, reference, m.layout)

    chest = list(measure(engine, _take(chest_items(default_shared_data()), "validate", per_set), invert=True))
    non_chest = _embedded_non_chest(engine, "validate")
    rows: dict[str, dict] = {}
    for m in chest:
        row = rows.setdefault(m.item.source, {"chest": True, "n": 0, "flagged": 0, "by_pixels": 0, "inverted_n": 0,
                                              "inverted_flagged": 0, "inverted_said_inverted": 0})
        row["n"] += 1
        row["flagged"] += bool(flags(m))
        row["by_pixels"] += bool(m.pixel_reasons)
        inverted_flags = flags(m, inverted=True)
        row["inverted_n"] += 1
        row["inverted_flagged"] += bool(inverted_flags)
        row["inverted_said_inverted"] += any("inverted" in f for f in inverted_flags)
    missed = []
    groups: dict[tuple[str, str], bool] = {}  # one picture in several files: caught when every file is
    for m in non_chest:
        row = rows.setdefault(m.item.source, {"chest": False, "n": 0, "flagged": 0, "by_pixels": 0})
        row["n"] += 1
        found = flags(m)
        row["flagged"] += bool(found)
        row["by_pixels"] += bool(m.pixel_reasons)
        key = (m.item.source, m.item.group)
        groups[key] = groups.get(key, True) and bool(found)
        if not found:
            missed.append(m.item.path.name)
    chest_n = sum(r["n"] for r in rows.values() if r["chest"])
    chest_flagged = sum(r["flagged"] for r in rows.values() if r["chest"])
    other_n = sum(r["n"] for r in rows.values() if not r["chest"])
    other_flagged = sum(r["flagged"] for r in rows.values() if not r["chest"])
    return {"model": engine.bundle.name, "reference": reference.built_from if reference else None,
            "distance_threshold": reference.threshold if reference else None,
            "layout_threshold": reference.layout_threshold if reference and reference.layout else None,
            "layout_margin": reference.layout_margin if reference and reference.layout else None,
            "chest_films": chest_n, "chest_flagged": chest_flagged,
            "chest_flagged_share": chest_flagged / max(1, chest_n),
            "non_chest_images": other_n, "non_chest_caught": other_flagged,
            "non_chest_caught_share": other_flagged / max(1, other_n),
            "non_chest_pictures": len(groups), "non_chest_pictures_caught": sum(groups.values()),
            "inverted_films": sum(r.get("inverted_n", 0) for r in rows.values()),
            "inverted_flagged": sum(r.get("inverted_flagged", 0) for r in rows.values()),
            "inverted_said_inverted": sum(r.get("inverted_said_inverted", 0) for r in rows.values()),
            "non_chest_missed": missed, "by_source": rows}


def format_result(r: dict) -> str:
    lines = [f"model {r['model']}; chest-film reference: {r['reference'] or 'none (pixel checks only)'}"
             + (f"; layout threshold {r['layout_threshold']:.0f} (margin {r['layout_margin']:.2f})"
                if r.get("layout_threshold") else
                f"; distance threshold {r['distance_threshold']:.0f}" if r["distance_threshold"] else ""),
             "held-out (validate) part only; nothing in it chose a threshold or entered the reference", ""]
    for source, row in r["by_source"].items():
        kind = "chest films wrongly flagged" if row["chest"] else "non-chest images caught"
        lines.append(f"  {source:<48} {kind:<28} {row['flagged']:>4} / {row['n']:<4} "
                     f"({row['flagged'] / max(1, row['n']):.1%}; by the pixel checks {row['by_pixels']})")
    lines += ["",
              f"chest films wrongly flagged: {r['chest_flagged']} / {r['chest_films']} "
              f"({r['chest_flagged_share']:.1%})   target <= 2 %",
              f"non-chest images caught:     {r['non_chest_caught']} / {r['non_chest_images']} "
              f"({r['non_chest_caught_share']:.1%})   target >= 95 %",
              f"  distinct pictures (one picture's encodings and sizes counted once): "
              f"{r['non_chest_pictures_caught']} / {r['non_chest_pictures']} caught",
              f"inverted chest films flagged: {r['inverted_flagged']} / {r['inverted_films']} "
              f"(said to look inverted: {r['inverted_said_inverted']})"]
    if r["non_chest_missed"]:
        lines.append("non-chest images missed: " + ", ".join(r["non_chest_missed"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench ood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    parser.add_argument("--per-set", type=int, default=300,
                        help="held-out chest films per data set (0: all of the validate part)")
    parser.add_argument("--write-reference", metavar="BUNDLE_DIR", default=None,
                        help="build BUNDLE_DIR's chest-film reference and thresholds (reference/calibrate parts)")
    parser.add_argument("--leave-one-source-out", action="store_true",
                        help="each chest data set left out of the reference in turn: how often a new hospital's "
                             "chest films are flagged (slow: embeds about 3,000 images)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.write_reference:
        print(json.dumps(write_reference(Path(args.write_reference)), indent=2))
        return 0
    if args.leave_one_source_out:
        from medflip_core.bench.ood_new_hospital import format_leave_one_source_out, leave_one_source_out

        result = leave_one_source_out(args.model, args.per_set or None)
        print(json.dumps(result, indent=2) if args.json else format_leave_one_source_out(result))
        return 0
    result = evaluate(args.model, args.per_set or None)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
