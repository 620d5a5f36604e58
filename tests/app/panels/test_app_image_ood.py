"""Issue 31 item 5 in the real window (offscreen, the bundled model): the Zero-shot tab warns for the app's own
colour logo and for an inverted chest film from what the image shows (a PNG has no tags), and not for a chest film."""

from __future__ import annotations

import pytest

from medflip_core.resources import resources_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def ready(window, qtbot):
    qtbot.waitUntil(lambda: window.engine is not None and not window.busy(), timeout=60000)
    return window


def test_zero_shot_tab_warns_from_the_image_content(ready, qtbot, shared_data):
    w = ready
    paths = [resources_dir() / "icons" / "medflip.png", shared_data / "dicom" / "rsna_cr_chest_fake_monochrome1.dcm",
             shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"]
    w.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: not w.busy() and len(w.images) == 3, timeout=60000)
    zs = w.zero_shot
    zs.labels_edit.setPlainText("No Finding\nPneumonia")
    # the inverted film: "looks inverted (bones dark, air bright)", or, when it is also far from the chest films
    # (v4), "unlike the chest films … a film displayed inverted (bones dark, air bright; …"
    expected = ("⚠ Colour image (a photograph, drawing or screen capture?), not a radiograph",
                "inverted (bones dark, air bright", None)
    for index, warning in enumerate(expected):
        w.browser.select_index(index)
        qtbot.waitUntil(lambda: not w.busy(), timeout=30000)
        zs.request()
        if warning is None:  # the image before was flagged: a stale status cannot pass this
            qtbot.waitUntil(lambda: "Zero-shot probabilities" in zs.status.text() and not zs.warnings.texts()
                            and not w.busy(), timeout=30000)
        else:  # the image's warnings: a line each, under the status (app.panels.warning_lines)
            qtbot.waitUntil(lambda warning=warning: any(warning in x for x in zs.warnings.texts()) and not w.busy(),
                            timeout=30000)
        assert len(zs.bars) == 2
