"""The Qt-free session model on real images and the real bundled model (no Qt imported)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from medflip_core.errors import MedflipError
from medflip_core.imaging.preprocess import letterbox_geometry
from medflip_core.inference.batch import write_csv
from medflip_core.resources import resources_dir
from medflip_core.session import Session, check_prompts, load_paths

LABELS = ["No Finding", "Pneumonia"]


@pytest.fixture(scope="module")
def engine():
    from medflip_core.inference.engine import Engine

    return Engine(resources_dir() / "models" / "medflip-default", threads=2)


@pytest.fixture
def session(engine, shared_data):
    s = Session()
    s.set_engine(engine)
    loaded = load_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"),
                         str(shared_data / "dicom" / "highdicom_dx_animal_lateral.dcm")])
    s.add_images(loaded.images)
    return s


def test_load_paths_reports_bad_and_missing_paths_and_counts_progress(shared_data, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "good.dcm").symlink_to(shared_data / "dicom" / "RG1_UNCR.dcm")
    seen = []
    result = load_paths([str(tmp_path), str(tmp_path / "missing.dcm")], progress=lambda d, t: seen.append((d, t)))
    assert [rg.path.name for rg in result.images] == ["good.dcm"]
    assert len(result.errors) == 2 and "broken.png" in result.errors[0] and "no such file" in result.errors[1]
    assert result.failed_paths == [str(tmp_path / "missing.dcm")]
    assert seen == [(1, 2), (2, 2)]


def test_the_same_file_twice_is_added_once(session, shared_data):
    again = load_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm")]).images
    new, repeated = session.add_images(again)
    assert new == [] and repeated == [0] and len(session.images) == 2


def test_score_is_a_softmax_over_labels_and_inputs_are_checked(session):
    scores = session.score(0, LABELS, ["a chest radiograph showing {label}."])
    assert list(scores) == LABELS and sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(MedflipError, match="at least one label"):
        session.score(0, [], [])
    with pytest.raises(MedflipError, match="listed twice"):
        session.score(0, ["Pneumonia", "pneumonia"], [])
    with pytest.raises(MedflipError, match=r"line 2 .* no \{label\}"):
        check_prompts(LABELS, ["{label}.", "a chest radiograph"])
    with pytest.raises(MedflipError, match="Open an image"):
        session.score(5, LABELS, [])
    assert session.warnings(1) and not session.warnings(0)  # the dog is flagged, the chest is not


def test_no_engine_is_a_readable_error(shared_data):
    s = Session()
    s.add_images(load_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")]).images)
    with pytest.raises(MedflipError, match="Choose a model"):
        s.score(0, LABELS, [])
    assert not s.can_retrieve()


def test_heat_map_covers_the_image_only_with_its_stated_range(session, engine):
    rg = session.images[0]
    overlay = session.heat_map(0, "Pneumonia", 0.5)
    _, new_h, new_w, _, _ = letterbox_geometry(*rg.pixels.shape, engine.pre.image_size)
    assert overlay.rgba.shape == (new_h, new_w, 4)
    assert overlay.low < overlay.high and overlay.low >= -1.0 and overlay.high <= 1.0
    assert (overlay.rgba[..., 3] == 128).all()


def test_retrieve_and_search(session):
    assert session.can_retrieve()
    hits = session.retrieve(0, 4)
    assert len(hits) == 4 and hits[0].score >= hits[-1].score and hits.warnings == []
    # how close the sentences shown are, against this image's similarity over the whole bank (recomputed here)
    scores = session.engine.sentence_bank.scores(session.embedding(0).embedding[0])[0]
    assert hits.bank_size == len(session.engine.sentence_bank) and hits.bank_sd == pytest.approx(scores.std())
    spread = hits[0].score - hits[-1].score
    assert f"within {spread:.3f} of each other, {spread / scores.std():.1f} standard deviations" in hits.closeness()
    assert ("nearly a tie" in hits.closeness()) == (spread < scores.std())
    ranking = session.search("pleural effusion")
    assert sorted(h.index for h in ranking) == [0, 1]
    assert {h.name for h in ranking} == {rg.path.name for rg in session.images}
    assert [h.out_of_distribution for h in ranking] == [False, True]  # the dog lateral comes last, flagged
    with pytest.raises(MedflipError, match="Type what to search"):
        session.search("  ")


def _batch_folder(shared_data: Path, tmp_path: Path, names: tuple[str, ...]) -> Path:
    """Links to real DICOMs of the shared data and one broken PNG: a folder to batch-score."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(shared_data / "dicom" / name)
    (folder / "broken.png").write_bytes(b"\x89PNG garbage")
    return folder


def test_score_folder_rows_progress_cancel_and_csv(session, shared_data, tmp_path):
    folder = _batch_folder(shared_data, tmp_path,
                           ("rsna_cr_chest_jpeg_baseline.dcm", "highdicom_dx_animal_lateral.dcm", "RG1_UNCR.dcm"))
    seen = []
    rows = session.score_folder(folder, LABELS, progress=lambda d, t: seen.append(d))
    assert seen == [0, 1, 2, 3, 4] and len(rows) == 4  # 0 of 4 as soon as the files are counted
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert "error" in by_name["broken.png"]
    assert by_name["highdicom_dx_animal_lateral.dcm"]["warnings"]  # out-of-distribution flag per row
    assert by_name["rsna_cr_chest_jpeg_baseline.dcm"]["top"] in LABELS
    # the folder loop gives the same scores as scoring the opened image
    opened = session.score(0, LABELS, [])
    assert by_name["rsna_cr_chest_jpeg_baseline.dcm"]["scores"] == pytest.approx(opened, abs=1e-6)
    done: list[int] = []
    stopped = session.score_folder(folder, LABELS, progress=lambda d, t: done.append(d),
                                   should_stop=lambda: done[-1:] == [2])
    assert len(stopped) == 2  # cancel keeps the rows scored so far
    out = write_csv(rows, LABELS, tmp_path / "scores")
    assert out.name == "scores.csv"
    lines = out.read_text().splitlines()
    assert lines[0] == ("file,path,top_label,No Finding,Pneumonia,out_of_distribution,notes,error,"
                        "model,model_version,label_mode,prompts,templates,uncalibrated_labels,"
                        "unvalidated_labels,abnormality_like_labels")
    numbers = [c for line in lines[1:] for c in line.split(",")[3:5] if c]
    assert numbers and all(len(c.split(".")[1]) == 4 and "e" not in c for c in numbers)


def test_empty_folder_says_so(session, tmp_path):
    with pytest.raises(MedflipError, match="contains no images"):
        session.score_folder(tmp_path, LABELS)


def test_session_needs_no_qt_and_no_torch():
    code = ("import sys, medflip_core.session, medflip_core.inference.engine; "
            "print(sorted(m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_default_templates_keep_the_bundles_decision_rule(engine, session):
    """The GUI sends the model's own prompts written as templates (what its template box shows): the bundle's fitted
    rule must still apply to them."""
    from medflip_core.bundles.bundle import Bundle
    from medflip_core.inference.engine import Engine
    from medflip_core.inference.zeroshot import MANIFEST_KEY, DecisionRule
    from medflip_core.labeler.prompts import model_prompts

    rule = DecisionRule("softmax", {"pneumonia": -50.0}, 1.0, "test")
    biased = Engine(Bundle(engine.bundle.path, {**engine.bundle.manifest, MANIFEST_KEY: rule.as_dict()}),
                    threads=2, verify=False)
    session.set_engine(biased)
    defaults = session.zero_shot(0, LABELS, list(model_prompts(biased.bundle.manifest).templates))
    assert defaults.rule == rule and defaults.probs[..., 1].max() < 1e-6
    custom = session.zero_shot(0, LABELS, ["an x-ray with {label}."])
    assert custom.rule == DecisionRule() and custom.probs[..., 1].max() > 1e-3


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return int(next(x for x in fh if x.startswith("VmRSS:")).split()[1]) / 1024


def test_load_paths_of_200_links_keeps_rss_bounded_and_names_the_duplicates(shared_data, tmp_path):
    import gc

    files = []
    for i in range(200):
        files.append(tmp_path / f"link{i:03d}.dcm")
        files[-1].symlink_to(shared_data / "dicom" / "RG1_UNCR.dcm")  # 1955 x 1841: 28 MB a film, eagerly
    gc.collect()
    before = _rss_mb()
    result = load_paths([str(p) for p in files])
    assert _rss_mb() - before < 200  # the old eager load grew by 200 films (5.6 GB)
    assert len(result.images) == 1 and "199 files are the same image as link000.dcm" in result.duplicate_message()
    s = Session()
    assert s.add_images(result.images) == ([0], [])
    # a later drop of another link to the same file, or of a copy with its SOP Instance UID, is already open
    copy = tmp_path / "copy.dcm"
    copy.write_bytes((shared_data / "dicom" / "RG1_UNCR.dcm").read_bytes())
    again = load_paths([str(files[7]), str(copy)])
    assert len(again.images) == 1 and s.add_images(again.images) == ([], [0])


def test_search_streams_over_the_images_without_keeping_their_pixels(session):
    from medflip_core.imaging import default_cache

    cache = default_cache()
    cache.clear()
    ranking = session.search("pleural effusion")
    assert len(ranking) == 2
    assert len(cache) == 0 and all(rg.on_demand for rg in session.images)  # decoded, embedded, dropped


def test_batch_and_search_decoded_in_worker_processes_equal_the_ones_decoded_here(session, shared_data, tmp_path):
    from medflip_core.imaging.reader_processes import ReaderProcesses

    folder = _batch_folder(shared_data, tmp_path,
                           ("RG1_J2KR.dcm", "highdicom_dx_animal_lateral.dcm", "rsna_cr_chest_jpeg_baseline.dcm"))
    here = session.score_folder(folder, LABELS)
    reader = ReaderProcesses(2)
    try:
        seen: list[int] = []
        there = session.score_folder(folder, LABELS, progress=lambda d, t: seen.append(d), reader=reader)
        assert seen == [0, 1, 2, 3, 4]
        assert [r["path"] for r in there] == [r["path"] for r in here]
        for a, b in zip(here, there, strict=True):
            assert ("error" in a) == ("error" in b)
            if "error" not in a:
                assert b["scores"] == pytest.approx(a["scores"], abs=1e-6) and b["warnings"] == a["warnings"]
        expected = [(h.index, h.score) for h in session.search("pleural effusion")]
        session._embeddings.clear()
        got = [(h.index, h.score) for h in session.search("pleural effusion", reader)]
        assert [i for i, _ in got] == [i for i, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)
    finally:
        reader.close()
