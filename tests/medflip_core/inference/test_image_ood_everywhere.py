"""Issue 31 item 5: the image-content warnings go wherever the tag warnings go: the session (the Zero-shot tab, the
Retrieval tab and text search read it), the batch rows and their CSV, `medflip classify` (text and JSON) and
`medflip retrieve`. Real images, the bundled default model."""

from __future__ import annotations

import csv
import json
import os

import pytest

from medflip_core.inference.batch import describe_run, write_csv
from medflip_core.inference.image_ood import FAR
from medflip_core.resources import resources_dir
from medflip_core.session import Session, load_paths

LOGO = resources_dir() / "icons" / "medflip.png"
MODEL = str(resources_dir() / "models" / "medflip-default")
LABELS = ["No Finding", "Pneumonia"]


@pytest.fixture(scope="module")
def engine():
    from medflip_core.inference.engine import Engine

    return Engine(MODEL, threads=2, prefer_gpu=False)


@pytest.fixture
def folder(tmp_path, shared_data):
    """The app's logo, the lower-leg film, an inverted-as-filed chest film and two chest films."""
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "logo.png").symlink_to(LOGO)
    for name in ("RG3_J2KI.dcm", "rsna_cr_chest_fake_monochrome1.dcm", "rsna_cr_chest_jpeg_baseline.dcm"):
        (out / name).symlink_to(shared_data / "dicom" / name)
    (out / "kermany.jpeg").symlink_to(shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg")
    return out


def test_session_warnings_read_the_image_once_a_model_is_loaded(engine, folder):
    session = Session()
    session.add_images(load_paths([str(folder / n) for n in ("logo.png", "kermany.jpeg")]).images)
    assert session.warnings(0) == []  # no model: the tags only, and a PNG has none
    session.set_engine(engine)
    logo = session.warnings(0)
    assert logo and logo[0].startswith("colour image") and "not a radiograph" in logo[0]
    assert session.warnings(1) == []
    assert session.zero_shot(0, LABELS, []).probs.shape == (1, 2)  # scores are still given, with the warning
    assert session.retrieve(0, 2).warnings == logo


def test_batch_rows_and_csv_carry_the_content_warnings(engine, folder, tmp_path):
    session = Session()
    session.set_engine(engine)
    rows = {os.path.basename(r["path"]): r for r in session.score_folder(folder, LABELS)}
    assert rows["logo.png"]["warnings"][0].startswith("colour image")
    leg = rows["RG3_J2KI.dcm"]["warnings"]
    assert any("EXTREMITY" in w for w in leg) and any(w.startswith(FAR) for w in leg)
    assert any("inverted" in w for w in rows["rsna_cr_chest_fake_monochrome1.dcm"]["warnings"])
    assert rows["rsna_cr_chest_jpeg_baseline.dcm"]["warnings"] == [] and rows["kermany.jpeg"]["warnings"] == []
    out = write_csv(list(rows.values()), LABELS, tmp_path / "scores.csv", describe_run(engine, LABELS))
    with open(out, newline="") as fh:
        by_file = {r["file"]: r for r in csv.DictReader(fh)}
    assert "colour image" in by_file["logo.png"]["out_of_distribution"]
    assert "inverted" in by_file["rsna_cr_chest_fake_monochrome1.dcm"]["out_of_distribution"]
    assert by_file["kermany.jpeg"]["out_of_distribution"] == ""


def test_medflip_classify_and_retrieve_say_it(folder, capsys):
    from medflip_core.cli import main

    assert main(["classify", str(folder / "logo.png"), str(folder / "kermany.jpeg"), "--model", MODEL,
                 "--labels", ",".join(LABELS), "--json"]) == 0
    results = {os.path.basename(r["path"]): r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["logo.png"]["warnings"][0].startswith("colour image") and results["kermany.jpeg"]["warnings"] == []
    assert main(["classify", str(folder / "logo.png"), "--model", MODEL, "--labels", ",".join(LABELS)]) == 0
    assert "    warning: colour image" in capsys.readouterr().out
    assert main(["retrieve", str(folder / "logo.png"), "--k", "2", "--model", MODEL, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"][0].startswith("colour image")


def test_medflip_evaluate_counts_the_images_out_of_distribution(tmp_path, shared_data, capsys):
    from medflip_core.cli import main

    kermany = shared_data / "cxr-pneumonia-kermany" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for f in sorted((kermany / cls).iterdir())[:3]:
            (tmp_path / "data" / cls / f.name).symlink_to(f)
    (tmp_path / "data" / "NORMAL" / "logo.png").symlink_to(LOGO)
    assert main(["evaluate", str(tmp_path / "data"), "--model", MODEL, "--n-boot", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # the logo, and any chest film among the ~1 % the check flags wrongly (person1000_bacteria_2931 is one)
    examples = result["out_of_distribution_examples"]
    assert result["out_of_distribution"] == len(examples) and 1 <= len(examples) <= 2
    assert examples[0]["path"].endswith("logo.png") and examples[0]["warnings"][0].startswith("colour image")
    assert main(["evaluate", str(tmp_path / "data"), "--model", MODEL, "--n-boot", "20"]) == 0
    assert f"warning: {len(examples)} image(s) out of the model's distribution, e.g. logo.png: colour image" in \
        capsys.readouterr().out
