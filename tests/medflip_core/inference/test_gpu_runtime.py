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

from medflip_core.inference import gpu_runtime
from medflip_core.inference.gpu_runtime import (
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
    assert gpu_runtime.is_builtin(OWN)  # onnxruntime-gpu's own provider: the classic provider list, no plugin
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
            "from medflip_core.inference import gpu_runtime as g\n"
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
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    engine = Engine(resolve_model("medflip-default"))
    device = engine.device
    assert engine.providers[0] == ("CUDAExecutionProvider" if device.on_gpu else "CPUExecutionProvider")
    assert engine._image.get_providers()[0] == engine.providers[0]
    if driver_loadable() is not None:
        assert not device.on_gpu and not device.driver
        assert "no NVIDIA driver" in device.note and device.label == "CPU"
    assert device.note.startswith("Inference runs on the ")


@needs_provider
def test_the_addon_provider_is_registered_as_a_plugin_up_to_the_driver(tmp_path):
    """The add-on's provider is not this process's onnxruntime's: it is registered as a plugin execution
    provider, which (in a fresh process) loads every CUDA library and then needs exactly the driver."""
    exe = _addon_layout(tmp_path / "medflip-studio-trainer", ort.__version__)
    code = ("import json\n"
            "from medflip_core.inference import gpu_runtime as g\n"
            "r = next(r for r in g.candidate_runtimes() if r.source == 'the trainer add-on')\n"
            "try:\n    g.load_runtime(r); said = ''\nexcept g.MedflipError as e:\n    said = str(e)\n"
            "print(json.dumps({'builtin': g.is_builtin(r), 'said': said, 'gpus': len(g.cuda_devices())}))")
    env = {**{k: v for k, v in os.environ.items() if k != "MEDFLIP_CUDA_RUNTIME"}, "MEDFLIP_TRAINER": str(exe)}
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    env=env).stdout)
    assert out["builtin"] is False
    if driver_loadable() is None:
        assert out["said"] == "" or "driver" in out["said"], out
    else:
        assert out["said"] == f"the NVIDIA driver ({DRIVER_LIBRARY}) is not installed" and out["gpus"] == 0


FAKE_DRIVER = r"""
#include <stdlib.h>
static int env(const char *name) { const char *v = getenv(name); return v ? atoi(v) : 0; }
int cuInit(unsigned flags) { (void)flags; return env("FAKE_CU_INIT"); }
int cuDriverGetVersion(int *v) { *v = env("FAKE_CU_VERSION"); return 0; }
int cuDeviceGetCount(int *n) { *n = env("FAKE_CU_COUNT"); return 0; }
"""


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory) -> str:
    """A library with the three driver calls asked before any CUDA library loads, answering what the test sets."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler to build a stand-in driver library")
    folder = tmp_path_factory.mktemp("driver")
    (folder / "cuda.c").write_text(FAKE_DRIVER)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(folder / "libcuda.so.1"), str(folder / "cuda.c")], check=True)
    return str(folder / "libcuda.so.1")


@linux_only
@pytest.mark.parametrize(("init", "version", "count", "said"), [
    (100, 13000, 1, "did not initialise"),  # CUDA_ERROR_NO_DEVICE: CUDA_VISIBLE_DEVICES hides every GPU
    (0, 12080, 1, "supports CUDA 12.8, and the CUDA provider needs CUDA 13"),
    (0, 13000, 0, "sees no GPU"),
    (0, 13010, 2, None),
])
def test_the_driver_is_asked_before_any_cuda_library_loads(fake_driver, monkeypatch, init, version, count, said):
    monkeypatch.setenv("FAKE_CU_INIT", str(init))
    monkeypatch.setenv("FAKE_CU_VERSION", str(version))
    monkeypatch.setenv("FAKE_CU_COUNT", str(count))
    problem, gpus = gpu_runtime.driver_query(fake_driver)
    if said is None:
        assert problem is None and gpus == count
    else:
        assert said in problem and gpus == 0


def test_a_missing_driver_is_a_reason_not_an_error(tmp_path):
    problem, gpus = gpu_runtime.driver_query(str(tmp_path / "libcuda.so.1"))
    assert "could not be asked" in problem and gpus == 0


@pytest.mark.parametrize("way", ["provider list", "plugin devices"])
def test_a_gpu_session_that_lands_on_the_cpu_is_said_and_remembered(monkeypatch, way):
    """A session asked for the GPU that onnxruntime runs on the CPU (here: the CUDA provider cannot start
    without a driver; the CPU's own device handed over as if it were a GPU) is noticed, not taken for a GPU: the
    engine says so, and later engines of this process go to the CPU at once."""
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    if way == "provider list":
        if OWN is None or driver_loadable() is None:
            pytest.skip("needs onnxruntime-gpu on a machine without a driver")
        device = gpu_runtime.InferenceDevice((gpu_runtime.CUDA_EP, gpu_runtime.CPU_EP), "asked", (), OWN,
                                             driver=True, builtin=True)
    else:
        device = gpu_runtime.InferenceDevice((gpu_runtime.CUDA_EP, gpu_runtime.CPU_EP), "asked",
                                             tuple(ort.get_ep_devices()), None, driver=True)
    monkeypatch.setattr(gpu_runtime, "_chosen", {True: device})
    engine = Engine(resolve_model("medflip-default"))
    assert engine.providers == [gpu_runtime.CPU_EP] and engine._image.get_providers() == [gpu_runtime.CPU_EP]
    assert engine.device.note.startswith("Inference runs on the CPU: the GPU could not load the model (")
    assert engine.device.label == "CPU" and engine.device.driver
    assert gpu_runtime.inference_device() is engine.device


def test_a_broken_model_does_not_turn_the_gpu_off(monkeypatch, tmp_path):
    """A model the CPU cannot load either (here: its image encoder cut short) is the model's fault: one sentence
    naming the file, and the GPU stays chosen for the next model."""
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    broken = tmp_path / "broken"
    shutil.copytree(resolve_model("medflip-default"), broken)
    onnx = broken / "image_encoder.onnx"
    onnx.write_bytes(onnx.read_bytes()[:4096])
    device = gpu_runtime.InferenceDevice((gpu_runtime.CUDA_EP, gpu_runtime.CPU_EP), "asked",
                                         tuple(ort.get_ep_devices()), None, driver=True)
    monkeypatch.setattr(gpu_runtime, "_chosen", {True: device})
    with pytest.raises(gpu_runtime.MedflipError, match=r"cannot load the ONNX encoder image_encoder\.onnx"):
        Engine(broken, verify=False)
    assert gpu_runtime.inference_device() is device
