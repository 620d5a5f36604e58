"""A huge image on screen (issue 31 item 9: one 8000x8000 PNG left the app at 1.25 GB): beside the image's own arrays
(its display-ready pixels and modality values, which the bounded pixel cache holds) the viewer keeps display data
at screen resolution only, whatever the image's size, and no full-resolution copy; zoomed in, it draws the part in
view from the full-resolution values. Measured as the bytes of the arrays held, not the process's memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore, QtGui, QtWidgets

from medflip_core.imaging import default_cache
from medflip_core.imaging.windowing import render

pytestmark = pytest.mark.slow
SIDE = 8000
DISPLAY_BOUND = 64 * 2**20  # what the viewer may keep beside the image's own arrays, for any image size


@pytest.fixture(scope="module")
def huge_png(shared_data, tmp_path_factory) -> Path:
    """The real CR chest film (15-bit, MONOCHROME1) scaled up to 8000x8000 and written as a 16-bit grey PNG, bright
    bones as a PNG has them."""
    import pydicom

    film = pydicom.dcmread(shared_data / "dicom" / "RG1_UNCR.dcm").pixel_array.astype(np.float32)
    film = film.max() - film
    big = np.asarray(Image.fromarray(film, mode="F").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
    path = tmp_path_factory.mktemp("huge") / "cr_8000.png"
    Image.fromarray(np.clip(big, 0, 65535).astype(np.uint16)).save(path, compress_level=1)
    del big
    return path


def held_arrays(roots: dict[str, object], depth: int = 4) -> dict[int, tuple[str, int]]:
    """Every numpy array (by its memory block) and QImage reachable from `roots` through attributes, lists, tuples
    and dicts, `depth` steps down: {identity: (where, bytes)}; only those of 1 MB or more."""
    found: dict[int, tuple[str, int]] = {}
    visited: set[int] = set()

    def visit(where: str, obj: object, left: int) -> None:
        if isinstance(obj, np.ndarray):
            block = obj
            while isinstance(block.base, np.ndarray):
                block = block.base
            if block.nbytes >= 2**20:
                found.setdefault(id(block), (where, block.nbytes))
            return
        if isinstance(obj, QtGui.QImage):
            if obj.sizeInBytes() >= 2**20:
                found.setdefault(obj.cacheKey(), (where, obj.sizeInBytes()))
            return
        if left == 0 or id(obj) in visited or isinstance(obj, (str, bytes, int, float, type)):
            return
        visited.add(id(obj))
        if isinstance(obj, (list, tuple)):
            items = enumerate(obj)
        elif isinstance(obj, dict):
            items = obj.items()
        elif hasattr(obj, "__dict__"):
            items = vars(obj).items()
        else:
            return
        for key, value in list(items):
            visit(f"{where}.{key}", value, left - 1)

    for name, root in roots.items():
        visit(name, root, depth)
    return found


def block_id(array: np.ndarray) -> int:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return id(array)


def settle(qtbot) -> None:
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
        qtbot.wait(20)


def beside_the_image(window) -> dict[int, tuple[str, int]]:
    """What the viewer, the image and its pixel cache entry hold beyond the image's own two arrays (the cache is
    the process's: other tests' films may be in it, within its own bound)."""
    viewer, rg = window.viewer, window.images[0]
    held = held_arrays({"viewer": viewer, "image": rg, "cached": default_cache().get(rg.cache_key)})
    own = {block_id(a) for a in rg.arrays()}
    assert own <= set(held), "the image's own arrays are where the walk looks"
    return {key: value for key, value in held.items() if key not in own}


def test_a_huge_png_on_screen_keeps_display_data_at_screen_resolution(window, qtbot, huge_png):
    window.open_paths([str(huge_png)])
    qtbot.waitUntil(lambda: window.viewer.radiograph is not None and not window.busy(), timeout=300000)
    settle(qtbot)
    viewer, rg = window.viewer, window.images[0]
    assert rg.shape == (SIDE, SIDE)
    pixels, raw = rg.arrays()
    assert pixels.nbytes + raw.nbytes == 2 * SIDE * SIDE * 4  # the image's own arrays: float32, as the readers give

    extra = beside_the_image(window)
    full = {where: size for where, size in extra.values() if size >= SIDE * SIDE}
    assert not full, f"full-resolution copies kept: {full}"  # was a float32 display copy, its 8-bit copy, its QImage
    assert sum(size for _, size in extra.values()) <= DISPLAY_BOUND, extra  # was 366 MiB

    # a window/level drag and an invert redraw the display data, no more
    viewer._drag_window(-40.0, 60.0)
    viewer.invert_box.setChecked(True)
    settle(qtbot)
    assert sum(size for _, size in beside_the_image(window).values()) <= DISPLAY_BOUND

    # zoomed in to about one image pixel per screen pixel: the part in view is drawn from the full-resolution values
    port = viewer.view.size()
    centre = QtCore.QPointF(SIDE / 2, SIDE / 2)
    viewer.view.setRange(QtCore.QRectF(centre.x() - port.width() / 2, centre.y() - port.height() / 2,
                                       port.width(), port.height()), padding=0)
    settle(qtbot)
    qtbot.waitUntil(viewer.detail_item.isVisible, timeout=10000)
    area = viewer.detail_area()
    (x0, y0, x1, y1) = (int(area.left()), int(area.top()), int(area.right()), int(area.bottom()))
    expected = render(raw[y0:y1, x0:x1], viewer.window, not rg.metadata.inverted)  # inverted by the user
    assert np.array_equal(viewer.detail_item.image, (expected * 255).astype(np.uint8))
    assert sum(size for _, size in beside_the_image(window).values()) <= DISPLAY_BOUND
    viewer.fit()
    settle(qtbot)
    assert not viewer.detail_item.isVisible()
