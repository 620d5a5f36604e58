"""The mask view shows exactly what a training step keeps: same preprocessing, same algorithm, same seed."""

from __future__ import annotations

from pathlib import Path

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
    # the cost in tokens: "197 tokens instead of 197" at ratio 0 read as a slip (GUI walk)
    said = ("nothing is masked: the transformer runs on all 197 tokens" if ratio == 0 else
            f"runs the transformer on {len(kept) + 1} tokens instead of 197")
    assert said in view.counts.text()
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


def _trainer_keep(path, strategy: str, ratio: float, seed: int, share: float, scores=None) -> np.ndarray:
    """What a training step keeps for this image: the trainer's own loading, preprocessing and mask call."""
    from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
    from medflip_core.masking import integrity_scores
    from medflip_core.model.image_tower import mask_for_batch

    if strategy == "integrity":  # computed from the pixels the trainer's data path produces
        scores = integrity_scores(preprocess(load_image(path), PreprocessConfig())[None], 16)
    keep = mask_for_batch(1, 196, ratio, seed, strategy, scores, share)
    return np.arange(196) if keep is None else keep.numpy()[0]


@pytest.fixture
def view_with_model(window, qtbot):
    """The mask view once the bundled default model is loaded (its ONNX patch tokens drive `attention`)."""
    qtbot.waitUntil(lambda: window.mask_view.engine is not None, timeout=60000)
    return window.mask_view


@pytest.mark.parametrize("strategy", ["random", "integrity", "attention"])
@pytest.mark.parametrize(("ratio", "seed", "share"), [(75, 0, 50), (50, 3, 100), (90, 11, 0)])
def test_every_strategy_keeps_what_the_trainer_keeps(view_with_model, shared_data, strategy, ratio, seed, share):
    view = view_with_model
    path = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA").iterdir())[0]
    view.set_radiograph(load_image(path))
    view.strategy.setCurrentIndex(view.strategy.findData(strategy))
    view.ratio.setValue(ratio)
    view.share.setValue(share)
    view.seed.setValue(seed)
    kept = view.kept_patches()
    assert len(kept) == round(196 * (1 - ratio / 100))
    # attention: the view's score map (ONNX) through the trainer's mask call; torch-vs-ONNX scores are
    # compared in tests/medflip_core/model/test_mask_scores.py
    scores = view.scores[None] if strategy == "attention" else None
    assert np.array_equal(kept, _trainer_keep(path, strategy, ratio / 100, seed, share / 100, scores))
    assert f"{len(kept)} of 196 patches kept" in view.counts.text()
    assert f"runs the transformer on {len(kept) + 1} tokens" in view.counts.text()
    assert "ms" in view.counts.text()  # the measured cost
    if strategy == "random":
        assert view.scores is None and view.score_item.image is None
    else:
        assert view.scores.shape == (196,)
        shown = view.score_item.image
        assert shown.shape == (224, 224)
        r, c = divmod(int(np.argmax(view.scores)), 14)
        assert shown[r * 16 + 8, c * 16 + 8] == pytest.approx(view.scores.max())


def test_attention_map_is_the_engines_patch_text_similarity(view_with_model, shared_data):
    from medflip_core.masking import patch_text_scores

    view = view_with_model
    assert "Pneumonia" in view.text.text()  # the model's default findings
    view.set_radiograph(load_image(shared_data / "dicom" / "RG1_J2KI.dcm"))
    view.strategy.setCurrentIndex(view.strategy.findData("attention"))
    engine = view.engine
    tokens = engine.embed_pixels(view.pixels).patch_tokens
    np.testing.assert_allclose(view.scores, patch_text_scores(tokens, engine.embed_texts(view.texts()))[0],
                               rtol=1e-6)
    # the guided half of the drops are the most text-similar patches
    dropped = set(range(196)) - set(view.kept_patches().tolist())
    assert set(np.argsort(-view.scores)[: round(0.5 * 147)].tolist()) <= dropped
    before = view.scores.copy()
    view.text.setText("Cardiomegaly")
    view.text.editingFinished.emit()
    assert view.texts() == engine.prompt_texts(["Cardiomegaly"])["Cardiomegaly"]
    assert not np.allclose(view.scores, before)  # a different text, a different map


def test_attention_without_text_or_model_says_why(window, shared_data):
    view = window.mask_view
    view.set_radiograph(load_image(shared_data / "dicom" / "RG1_J2KI.dcm"))
    view.engine = None
    view.strategy.setCurrentIndex(view.strategy.findData("attention"))
    assert "needs a loaded model" in view.counts.text()
    assert len(view.kept_patches()) == 0
    view.strategy.setCurrentIndex(view.strategy.findData("integrity"))  # still works without a model
    assert len(view.kept_patches()) == 49


def test_the_mask_tab_prepares_an_image_only_when_it_is_shown(window, qtbot, shared_data):
    """Browsing with another tab in front costs no preprocessing for the mask tab; showing it shows the image."""
    path = shared_data / "dicom" / "RG1_J2KI.dcm"
    window.tabs.setCurrentWidget(window.zero_shot)
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: len(window.images) == 1 and window.viewer.radiograph is not None, timeout=30000)
    assert window.mask_view.radiograph is None and window.mask_view.pixels is None
    window.tabs.setCurrentWidget(window.mask_view)
    assert window.mask_view.radiograph is window.viewer.radiograph
    assert window.mask_view.pixels.shape == (1, 1, 224, 224) and len(window.mask_view.kept_patches()) == 49


def test_resizing_moves_the_score_map_without_redrawing_it(window, view_with_model, qtbot, shared_data):
    """The model loads in the background and re-samples when it arrives; wait for it first, so only the resize
    can touch the score map (CI once saw the load land mid-test)."""
    view = view_with_model
    window.tabs.setCurrentWidget(view)
    view.set_radiograph(load_image(shared_data / "dicom" / "RG1_J2KI.dcm"))
    view.strategy.setCurrentIndex(view.strategy.findData("integrity"))
    image = view.score_item.image
    window.resize(1900, 700)
    qtbot.waitUntil(lambda: view.score_placement() == "beside", timeout=5000)
    qtbot.wait(50)
    assert view.score_label.text().startswith("Right, ")
    assert view.score_item.image is image  # the same array: placed anew, not re-rendered
    # the model input fills its (now half-width) view: a walk saw it at ~155 px of a 255 x 280 view
    size = view.pixels.shape[-1]
    qtbot.waitUntil(lambda: min(span[1] - span[0] for span in view.view.viewRange()) <= size * 1.05, timeout=5000)


def test_a_hidden_mask_tab_lets_go_of_the_image_it_showed(window, qtbot, shared_data):
    """Another image opened while a different tab is in front: the mask tab drops the old one (nothing stale to
    re-preprocess on the GUI thread when a model loads) and shows the new one when it is shown again."""
    window.tabs.setCurrentWidget(window.mask_view)
    window.open_paths([str(shared_data / "dicom" / "RG1_J2KI.dcm")])
    qtbot.waitUntil(lambda: window.mask_view.radiograph is not None, timeout=30000)
    window.tabs.setCurrentWidget(window.zero_shot)
    window.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    shown = window.viewer
    qtbot.waitUntil(lambda: shown.radiograph is not None and shown.radiograph.path.name == "RG1_UNCR.dcm",
                    timeout=30000)
    assert window.mask_view.radiograph is None and window.mask_view.pixels is None
    window.tabs.setCurrentWidget(window.mask_view)
    assert window.mask_view.radiograph is window.viewer.radiograph


@pytest.mark.slow
def test_a_run_with_a_decoder_reconstructs_the_mask_on_screen(window, qtbot, shared_data, mim_decoder_run):
    """The default model's 14x14 grid is not the 112-px run's 7x7 one: the run redraws a mask of the same ratio and
    seed and says so; the three panels come back from the child process and are shown under the mask."""
    view = window.mask_view
    box = view.reconstruction
    assert not box.use_run(str(mim_decoder_run)) and "Open an image first" in box.caption.text()
    view.set_radiograph(load_image(shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL" / "IM-0115-0001.jpeg"))
    assert box.start()
    qtbot.waitUntil(lambda: box.process is None, timeout=240000)
    assert not box.picture.isHidden() and box.picture.pixmap() is not None and not box.picture.pixmap().isNull()
    assert "Loss on the dropped patches" in box.caption.text() and "7x7" in box.caption.text()
    # a GUI walk: the panels were about 75 px each in the tab; a click shows them in a window of their own
    from PySide6 import QtCore

    assert box.large is None
    qtbot.mouseClick(box.picture, QtCore.Qt.MouseButton.LeftButton)
    assert box.large is not None and box.large.isVisible()
    large = box.large.picture.pixmap()
    assert large.width() > box.picture.pixmap().width() and large.height() > box.picture.pixmap().height()
    assert box.large.text.text().startswith(Path(str(mim_decoder_run)).name) and "Click" not in box.large.text.text()
    box.large.close()
    box.run = str(shared_data)  # not a run: one sentence, the view keeps working
    assert box.start()
    qtbot.waitUntil(lambda: box.process is None, timeout=240000)
    assert box.caption.text().startswith("Reconstruction failed:") and "Traceback" not in box.caption.text()


def test_reconstruct_before_any_run_says_where_runs_come_from(window, monkeypatch, tmp_path):
    """A GUI walk: the button opened a dialog on a runs folder that did not exist, listing nothing, saying
    nothing. The caption now says where runs come from, and the dialog opens somewhere that exists."""
    from PySide6 import QtWidgets

    from medflip_core.resources import user_data_dir

    asked = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        lambda parent, title, start: asked.append(start) or "")
    box = window.mask_view.reconstruction
    box.choose_run()
    assert "No pre-training run in" in box.caption.text() and "Reconstruction above 0" in box.caption.text()
    assert asked and Path(asked[0]).is_dir()
    (user_data_dir() / "runs" / "medflip-1").mkdir(parents=True)  # once a run exists, the dialog opens on the runs
    box.choose_run()
    assert asked[-1] == str(user_data_dir() / "runs")


def test_attention_scores_wear_the_zero_shot_heat_maps_colours(window, qtbot, shared_data):
    """A GUI walk: the attention strategy drew patch-text similarity in viridis, the Zero-shot heat-map the same
    quantity blue to green to red. The mask view's lowest and highest patches are the heat-map's lowest and highest
    colours; and the cost paragraph's sentences begin as sentences (one began with "medflip bench throughput")."""
    w = window
    qtbot.waitUntil(lambda: w.engine is not None, timeout=60000)
    w.open_paths([str(shared_data / "dicom" / "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: bool(w.zero_shot.bars) and not w.busy(), timeout=60000)
    w.zero_shot.heat_label.setCurrentText("Pneumonia")
    qtbot.waitUntil(w.viewer.overlay_item.isVisible, timeout=60000)
    heat = w.viewer.overlay_item.image  # the Zero-shot heat-map over the film (RGBA)
    values = w.viewer._overlay_values
    inside = np.isfinite(values)
    hottest = np.unravel_index(np.argmax(np.where(inside, values, -np.inf)), values.shape)
    coldest = np.unravel_index(np.argmin(np.where(inside, values, np.inf)), values.shape)
    view = w.mask_view
    view.set_radiograph(load_image(shared_data / "dicom" / "RG1_UNCR.dcm"))
    view.strategy.setCurrentIndex(view.strategy.findData("attention"))
    lut = view.score_item.lut
    assert view.score_item.levels[0] == view.scores.min() and view.score_item.levels[1] == view.scores.max()
    assert tuple(lut[-1][:3]) == tuple(heat[hottest][:3])  # the highest similarity: one colour in both views
    assert tuple(lut[0][:3]) == tuple(heat[coldest][:3])
    assert "(blue) to" in view.score_label.text() and "(red)" in view.score_label.text()
    sentences = [s.strip() for s in view.counts.text().split(". ") if s.strip()]
    assert all(s[0].isupper() or s[0].isdigit() for s in sentences), sentences


def test_grid_lines_survive_the_panels_downscaling():
    """A GUI walk: at about 0.7x (the panel beside a film at 1280x800) one-pixel grid lines dropped out of part of
    the masked picture. Each line is two pixels wide, so every other-pixel sampling still meets it."""
    import numpy as np

    from app.panels.mask_view import mask_rgba

    rgba = mask_rgba(np.arange(0, 196, 2), (14, 14), 16)
    lines = rgba[..., 3] == 110
    for start in (0, 1):  # sampled at half size from either phase, every grid row and column still shows
        half = lines[start::2, start::2]
        assert half[::8].all() and half[:, ::8].all()
