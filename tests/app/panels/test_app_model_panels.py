"""Zero-shot, heat-map, retrieval and batch scoring through a real exported bundle; no torch in the GUI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def model_window(window, qtbot, tiny_bundle):
    window.use_model_folder(str(tiny_bundle))
    qtbot.waitUntil(lambda: window.engine is not None, timeout=30000)
    return window


def test_zero_shot_scores_appear_and_sum_to_one(model_window, qtbot, shared_data):
    w = model_window
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 1, timeout=20000)
    w.zero_shot.labels_edit.setPlainText("No Finding\nPneumonia\nPneumoperitoneum")
    w.zero_shot.request()
    qtbot.waitUntil(lambda: set(w.last_scores) == {"No Finding", "Pneumonia", "Pneumoperitoneum"}, timeout=20000)
    assert sum(w.last_scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert set(w.zero_shot.bars) == set(w.last_scores)
    w.zero_shot.heat_label.setCurrentText("Pneumonia")
    qtbot.waitUntil(w.viewer.overlay_item.isVisible, timeout=20000)
    w.zero_shot.heat_label.setCurrentIndex(0)
    assert not w.viewer.overlay_item.isVisible()


def test_the_models_own_prompt_choice_is_shown(window, qtbot, tiny_bundle):
    """The template box holds the prompts of the model in use: the default model's own choice, and for a bundle
    without one the default prompt set (a GUI walk: the box showed the default set while the model used its own)."""
    from medflip_core.bundles.model_store import default_model_dir
    from medflip_core.labeler.prompts import ShippedPrompts, load_prompt_set

    shipped = ShippedPrompts.from_manifest(json.loads((default_model_dir() / "manifest.json").read_text()))
    window.use_model_folder(str(default_model_dir()))
    qtbot.waitUntil(lambda: window.engine is not None
                    and window.engine.bundle.path.resolve() == default_model_dir().resolve(), timeout=30000)
    assert window.zero_shot.templates() == list(shipped.prompt_set.templates)
    assert "the model's own prompts" in window.zero_shot.prompt_note.text()
    window.use_model_folder(str(tiny_bundle))  # a bundle without its own prompt choice: the default set's templates
    qtbot.waitUntil(lambda: window.engine is not None
                    and window.engine.bundle.path.resolve() == tiny_bundle.resolve(), timeout=30000)
    assert window.zero_shot.templates() == list(load_prompt_set().templates)
    assert window.zero_shot.templates_summary.text() == "the model's own prompts"


def test_retrieval_lists_sentences_and_text_search_ranks_images(model_window, qtbot, shared_data):
    w = model_window
    w.open_paths([str(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"),
                  str(shared_data / "dicom" / "nih_dx_secondary_capture.dcm")])
    qtbot.waitUntil(lambda: len(w.images) == 2, timeout=20000)
    w.retrieve(5, "")
    qtbot.waitUntil(lambda: w.retrieval.sentences.count() == 5, timeout=20000)
    assert w.retrieval.sentences.item(0).text().startswith("1. [")
    w.search_images("pleural effusion")
    qtbot.waitUntil(lambda: w.retrieval.ranked.count() == 2, timeout=20000)


def test_batch_scores_a_folder_including_bad_files(model_window, qtbot, shared_data, tmp_path):
    w = model_window
    for name in ("rsna_cr_chest_jpeg_baseline.dcm", "highdicom_dx_animal_lateral.dcm"):
        (tmp_path / name).symlink_to(shared_data / "dicom" / name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    w.score_folder(str(tmp_path))
    qtbot.waitUntil(lambda: w.batch.table.rowCount() == 3, timeout=30000)
    w.batch.write_csv(str(tmp_path / "out.csv"))
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(lines) == 4 and "broken.png" in "".join(lines)


def test_gui_process_never_imports_torch(tiny_bundle, shared_data, tmp_path):
    code = f"""
import os, sys, json, time
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
from app.window.main_window import MainWindow
w = MainWindow(); w.use_model_folder({str(tiny_bundle)!r}); w.show()
w.open_paths([{str(shared_data / 'dicom' / 'RG1_J2KR.dcm')!r}])
end = time.time() + 60
while (not w.images or w.engine is None or w.busy()) and time.time() < end:
    app.processEvents(); time.sleep(0.02)
w.zero_shot.request()
while not w.last_scores and time.time() < end:
    app.processEvents(); time.sleep(0.02)
print(json.dumps({{'scored': bool(w.last_scores), 'torch': 'torch' in sys.modules,
                  'transformers': 'transformers' in sys.modules}}))
"""
    env = {**os.environ, "MEDFLIP_CONFIG_DIR": str(tmp_path / "c"), "MEDFLIP_DATA_DIR": str(tmp_path / "d")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"scored": True, "torch": False, "transformers": False}


def test_screenshot_command(tiny_bundle, shared_data, tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "MEDFLIP_CONFIG_DIR": str(tmp_path / "c"), "MEDFLIP_DATA_DIR": str(tmp_path / "d")}
    out = subprocess.run([sys.executable, "-m", "app.main", "--offscreen", "--open",
                          str(shared_data / "dicom" / "RG3_J2KI.dcm"), "--model", str(tiny_bundle),
                          "--screenshot", str(shot), "--size", "1280x800"],
                         capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (800, 1280) and img.std() > 20


def test_the_status_bar_says_where_inference_runs_and_why(model_window):
    device = model_window.engine.device
    label = model_window.device_label
    assert label.isVisible()
    assert label.text().strip() == f"Inference: {device.label}"
    assert label.toolTip() == device.note and device.note.startswith("Inference runs on the ")
