"""Where inference runs: the CUDA runtime found in a real onnxruntime-gpu installation (this venv's, and one laid
out like the trainer add-on's folder), its version check, and the load chain up to the NVIDIA driver.

This machine has no GPU; on one that has, the same tests assert that the provider loads and sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from medflip_core import gpu_runtime
from medflip_core.gpu_runtime import (
    DRIVER_LIBRARY,
    OPTIONAL_LIBRARIES,
    PROVIDER_LIBRARY,
    REQUIRED_LIBRARIES,
    check_runtime,
    driver_loadable,
    runtime_at,
)

SITE = Path(ort.__file__).resolve().parent.parent
OWN = runtime_at(SITE, "this installation")
needs_provider = pytest.mark.skipif(OWN is None, reason="this onnxruntime has no CUDA provider (CPU-only build)")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the library names are Linux's")


@needs_provider
def test_this_venv_carries_a_complete_cuda_runtime():
    assert OWN.ort_version == ort.__version__
    assert OWN.missing == []
    assert check_runtime(OWN) is None


@needs_provider
@linux_only
def test_the_library_list_covers_everything_the_provider_links():
    """ldd with the runtime's folders on the path: only the driver may be missing, and every CUDA library the
    provider links is one we load."""
    dirs = sorted({str(p.parent) for p in OWN.libraries.values() if p})
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(dirs)}
    out = subprocess.run(["ldd", str(OWN.provider)], capture_output=True, text=True, env=env, check=True).stdout
    not_found = [line.split()[0] for line in out.splitlines() if "not found" in line]
    assert set(not_found) <= {DRIVER_LIBRARY}, out
    linked = {line.split()[0] for line in out.splitlines() if line.strip().startswith(("libcu", "libnv"))}
    assert linked - {DRIVER_LIBRARY} <= set(REQUIRED_LIBRARIES) | set(OPTIONAL_LIBRARIES), out


@needs_provider
def test_medflip_gpu_loads_every_library_and_stops_only_at_the_driver():
    """The whole chain in a fresh process: the CUDA libraries load by path, then the provider registers (with
    a driver) or fails for want of exactly the driver (without one)."""
    out = subprocess.run([sys.executable, "-m", "medflip_core.cli", "gpu", "--json"], capture_output=True,
                         text=True, check=True, env={k: v for k, v in os.environ.items()
                                                     if k not in ("MEDFLIP_CUDA_RUNTIME", "MEDFLIP_TRAINER")})
    report = json.loads(out.stdout)
    own = next(r for r in report["runtimes"] if r["source"] == "this installation")
    assert own["onnxruntime"] == ort.__version__ and own["missing"] == []
    if report["driver_error"] is None:
        assert own["loaded"] is True, own["problem"]
        assert ("GPU" in report["device"]) == (own["gpus"] > 0)
    else:
        assert own["loaded"] is False
        assert own["problem"] == f"the NVIDIA driver ({DRIVER_LIBRARY}) is not installed"
        assert report["device"].startswith("Inference runs on the CPU: no NVIDIA driver")


def _addon_layout(root: Path, version: str, leave_out: str = "") -> Path:
    """A folder laid out like the installed trainer add-on (PyInstaller's _internal), made of links to this
    venv's real provider and CUDA libraries; its executable links to this Python."""
    internal = root / "_internal"
    capi = internal / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    (capi / PROVIDER_LIBRARY).symlink_to(OWN.provider)
    for name, path in OWN.libraries.items():
        if path is not None and name != leave_out:
            dest = internal / path.parent.relative_to(SITE) / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path)
    info = next(SITE.glob("onnxruntime*.dist-info"))
    shutil.copytree(info, internal / f"{info.name.partition('-')[0]}-{version}.dist-info")
    exe = root / "MedFLIPStudio-trainer"
    exe.symlink_to(sys.executable)
    return exe


@needs_provider
def test_the_trainer_addon_is_a_cuda_runtime(tmp_path, monkeypatch):
    exe = _addon_layout(tmp_path / "medflip-studio-trainer", ort.__version__)
    monkeypatch.setenv("MEDFLIP_TRAINER", str(exe))
    monkeypatch.delenv("MEDFLIP_CUDA_RUNTIME", raising=False)
    found = {r.source: r for r in gpu_runtime.candidate_runtimes()}
    addon = found["the trainer add-on"]
    assert addon.root == exe.parent / "_internal"
    assert addon.ort_version == ort.__version__ and addon.missing == []
    assert check_runtime(addon) is None


@needs_provider
def test_a_provider_of_another_onnxruntime_is_refused(tmp_path):
    _addon_layout(tmp_path / "addon", "1.30.0")
    runtime = runtime_at(tmp_path / "addon", "the trainer add-on")
    problem = check_runtime(runtime)
    assert problem is not None and "1.30.0" in problem and ort.__version__ in problem
    with pytest.raises(gpu_runtime.MedflipError, match="same release"):
        gpu_runtime.load_runtime(runtime)


@needs_provider
@linux_only
def test_a_runtime_without_cudnn_names_what_it_lacks(tmp_path, monkeypatch):
    _addon_layout(tmp_path / "addon", ort.__version__, leave_out="libcudnn.so.9")
    monkeypatch.setenv("MEDFLIP_CUDA_RUNTIME", str(tmp_path / "addon"))
    runtime = next(r for r in gpu_runtime.candidate_runtimes() if r.source == "MEDFLIP_CUDA_RUNTIME")
    assert runtime.missing == ["libcudnn.so.9"]
    assert check_runtime(runtime) is None  # the system's library path may have it: loading tells
    code = ("import ctypes, json, sys\n"
            "from medflip_core import gpu_runtime as g\n"
            "try:\n    ctypes.CDLL('libcudnn.so.9'); system = True\nexcept OSError:\n    system = False\n"
            "r = next(r for r in g.candidate_runtimes() if r.source == 'MEDFLIP_CUDA_RUNTIME')\n"
            "try:\n    g.load_runtime(r); said = ''\nexcept g.MedflipError as e:\n    said = str(e)\n"
            "print(json.dumps({'system': system, 'said': said}))")
    env = {**os.environ, "MEDFLIP_CUDA_RUNTIME": str(tmp_path / "addon")}
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    env=env).stdout)
    if out["system"]:  # a system-wide cuDNN stands in: loading goes on to the driver
        assert "lacks" not in out["said"]
    else:
        assert "lacks libcudnn.so.9, and the system's library path has no such library either" in out["said"]


def test_a_folder_without_provider_is_no_runtime(tmp_path):
    (tmp_path / "onnxruntime" / "capi").mkdir(parents=True)
    assert runtime_at(tmp_path, "somewhere") is None


def test_the_engine_says_where_it_runs(tmp_path):
    from medflip_core.engine import Engine
    from medflip_core.model_store import resolve_model

    engine = Engine(resolve_model("medflip-default"))
    device = engine.device
    assert engine.providers[0] == ("CUDAExecutionProvider" if device.on_gpu else "CPUExecutionProvider")
    assert engine._image.get_providers()[0] == engine.providers[0]
    if driver_loadable() is not None:
        assert not device.on_gpu and not device.driver
        assert "no NVIDIA driver" in device.note and device.label == "CPU"
    assert device.note.startswith("Inference runs on the ")
