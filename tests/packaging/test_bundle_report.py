"""bundle_report: the size breakdown and the check for files a release must not carry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bundle_report", REPO / "packaging" / "bundle_report.py")
bundle_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bundle_report)


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)


def test_sizes_are_grouped_by_component_and_add_up(tmp_path):
    _write(tmp_path / "MedFLIPStudio", 1000)
    _write(tmp_path / "_internal" / "nvidia" / "cudnn" / "lib" / "libcudnn.so.9", 5000)
    _write(tmp_path / "_internal" / "torch" / "lib" / "libtorch_cpu.so", 3000)
    _write(tmp_path / "_internal" / "libQt6Core.so.6", 700)
    _write(tmp_path / "_internal" / "PySide6" / "Qt" / "plugins" / "platforms" / "libqoffscreen.so", 300)
    _write(tmp_path / "_internal" / "resources" / "models" / "medflip-default" / "image_encoder.onnx", 2000)
    sizes = bundle_report.group_sizes(tmp_path)
    assert sum(sizes.values()) == 12000
    assert sizes[bundle_report.GROUPS["nvidia"]] == 5000
    assert sizes[bundle_report.GROUPS["PySide6"]] == 1000  # Qt libraries and PySide6 counted together
    report = bundle_report.size_report(tmp_path)
    first = report.splitlines()[1]
    assert "CUDA" in first and "41.7 %" in first  # the largest component is listed first


def test_tests_caches_and_headers_are_flagged(tmp_path):
    _write(tmp_path / "_internal" / "numpy" / "core" / "multiarray.so", 10)
    assert bundle_report.forbidden_files(tmp_path) == []
    _write(tmp_path / "_internal" / "scipy" / "tests" / "test_x.py", 10)
    _write(tmp_path / "_internal" / "torch" / "include" / "ATen" / "Tensor.h", 10)
    _write(tmp_path / "_internal" / "app" / "__pycache__" / "main.cpython-311.pyc", 10)
    bad = {str(p) for p in bundle_report.forbidden_files(tmp_path)}
    assert "_internal/scipy/tests/test_x.py" in bad
    assert "_internal/torch/include/ATen/Tensor.h" in bad
    assert "_internal/app/__pycache__" in bad
