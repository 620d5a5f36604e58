"""constraints.txt pins what a fresh clone installs (issue 23 item 1): the installed versions are the pinned ones."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"


def pins() -> dict[str, str]:
    found = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def test_every_installed_dependency_is_the_pinned_version():
    pinned = pins()
    assert {"pyside6-essentials", "shiboken6", "pyqtgraph", "torch", "numpy", "onnxruntime-gpu"} <= set(pinned)
    wrong = {}
    for name, version in pinned.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. pyinstaller, installed only by `make dist`
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed != pinned: {wrong}"


def test_the_qt_binding_that_crashes_live_plots_is_never_pinned():
    pinned = pins()
    assert pinned["pyside6-essentials"] == pinned["shiboken6"] != "6.12.0"
