"""Where ONNX Runtime inference runs: on an NVIDIA GPU when the machine has a driver and some installed folder
carries a CUDA runtime for this app's ONNX Runtime, else on the CPU, with one sentence that says why.

The light app does not ship ONNX Runtime's CUDA provider: that library is 271 MB and does not compress (231 MB
gzipped), and it links CUDA 13 libraries (cuBLAS, cuRAND, cudart; cuDNN at run time) of another 1.9 GB. The
trainer add-on carries all of them (its torch needs them), so installing the add-on also brings GPU inference
to the light app: the provider is registered from the add-on's folder as an ONNX Runtime plugin execution
provider, after its CUDA libraries are loaded by full path. The NVIDIA driver (libcuda.so.1, nvcuda.dll)
always comes from the system. A source checkout's venv uses its own site-packages the same way, and
MEDFLIP_CUDA_RUNTIME names any other folder laid out like site-packages (an `onnxruntime/capi/` with the CUDA
provider, `nvidia/*/lib` with the libraries) or like the add-on (`_internal/`); a library the folder lacks is
loaded by name from the system's library path, so an unpacked onnxruntime-gpu wheel beside a system-wide CUDA 13
and cuDNN 9 serves too.

Nothing here raises for a machine without a GPU: `inference_device()` always answers, CPU being the answer.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from medflip_core.errors import MedflipError

log = logging.getLogger(__name__)

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
RUNTIME_ENV = "MEDFLIP_CUDA_RUNTIME"
_WINDOWS = sys.platform == "win32"
PROVIDER_LIBRARY = "onnxruntime_providers_cuda.dll" if _WINDOWS else "libonnxruntime_providers_cuda.so"
DRIVER_LIBRARY = "nvcuda.dll" if _WINDOWS else "libcuda.so.1"
# What ONNX Runtime 1.31's CUDA provider (built for CUDA 13, the version constraints.txt pins) links or opens,
# in load order (cublas needs cublasLt); cuFFT serves only FFT operators, which our encoders do not have.
if _WINDOWS:  # untested: no Windows machine
    REQUIRED_LIBRARIES = ("cudart64_13.dll", "cublasLt64_13.dll", "cublas64_13.dll", "curand64_10.dll",
                          "cudnn64_9.dll")
    # cuDNN 9 opens its parts by name when it first runs a kernel; Windows finds a DLL already loaded by its name,
    # and not always one in a folder added with add_dll_directory: so they are loaded first, by path
    OPTIONAL_LIBRARIES = ("cufft64_12.dll", "cudnn_graph64_9.dll", "cudnn_ops64_9.dll", "cudnn_heuristic64_9.dll",
                          "cudnn_adv64_9.dll", "cudnn_cnn64_9.dll", "cudnn_engines_precompiled64_9.dll",
                          "cudnn_engines_runtime_compiled64_9.dll", "cudnn_engines_tensor_ir64_9.dll")
    # pip's nvidia-* wheels; torch's Windows wheels carry their CUDA DLLs in torch/lib (the add-on); top level
    LIBRARY_DIRS = ("nvidia/cu13/bin/x86_64", "nvidia/cudnn/bin", "torch/lib", ".")
else:
    REQUIRED_LIBRARIES = ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10",
                          "libcudnn.so.9")
    OPTIONAL_LIBRARIES = ("libcufft.so.12",)
    LIBRARY_DIRS = ("nvidia/cu13/lib", "nvidia/cudnn/lib", ".")  # pip's nvidia-* wheels; PyInstaller's top level


@dataclass(frozen=True)
class CudaRuntime:
    """A folder that holds ONNX Runtime's CUDA provider and the CUDA libraries it needs."""

    source: str  # for messages: "this installation", "the trainer add-on", "MEDFLIP_CUDA_RUNTIME"
    root: Path  # a site-packages, or an installed app's _internal
    provider: Path
    libraries: dict[str, Path | None]  # library name -> where it is in this folder (None: not there)
    ort_version: str | None  # the ONNX Runtime the provider was built with, when the folder says

    @property
    def missing(self) -> list[str]:
        """Required libraries not in this folder: they are then looked for on the system's library path (a CUDA
        toolkit and cuDNN installed system-wide, LD_LIBRARY_PATH / PATH)."""
        return [name for name in REQUIRED_LIBRARIES if self.libraries.get(name) is None]


@dataclass(frozen=True)
class InferenceDevice:
    """Where this process's ONNX Runtime sessions run, and the sentence that says why."""

    providers: tuple[str, ...]
    note: str
    ep_devices: tuple = field(default=(), repr=False)  # onnxruntime OrtEpDevice objects of the CUDA provider
    runtime: CudaRuntime | None = None
    driver: bool = False  # an NVIDIA driver is installed: a GPU user who gets the CPU should be told why
    builtin: bool = False  # this process's onnxruntime(-gpu) has the CUDA provider built in: no plugin needed

    @property
    def on_gpu(self) -> bool:
        return self.providers[0] == CUDA_EP

    @property
    def label(self) -> str:
        """A short name for a status bar: GPU or CPU."""
        return "GPU (CUDA)" if self.on_gpu else "CPU"

    def session_kwargs(self, options) -> dict:
        """Keyword arguments of onnxruntime.InferenceSession; adds the CUDA devices to `options` (once)."""
        if not self.on_gpu:
            return cpu_session_kwargs(options)
        if self.builtin:  # the classic provider list: it needs no device discovery (which finds no GPU on WSL2)
            return {"sess_options": options, "providers": [(CUDA_EP, {"device_id": "0"}), CPU_EP],
                    "enable_fallback": 0}
        if not options.has_providers():  # the CUDA provider takes one device per session: the first GPU
            options.add_provider_for_devices(list(self.ep_devices[:1]), {})
        # no silent retry on the CPU inside onnxruntime: the engine notices and says so (Engine._session)
        return {"sess_options": options, "enable_fallback": 0}


def cpu_session_kwargs(options) -> dict:
    """Keyword arguments of onnxruntime.InferenceSession for a session on the CPU."""
    return {"sess_options": options, "providers": [CPU_EP]}


def runtime_at(root: Path, source: str) -> CudaRuntime | None:
    """The CUDA runtime in `root` (a site-packages, an add-on folder or its _internal), or None if it has no
    CUDA provider."""
    root = Path(root)
    if (root / "_internal" / "onnxruntime").is_dir():
        root = root / "_internal"
    provider = root / "onnxruntime" / "capi" / PROVIDER_LIBRARY
    if not provider.is_file():
        return None
    libraries: dict[str, Path | None] = {}
    for name in (*REQUIRED_LIBRARIES, *OPTIONAL_LIBRARIES):
        libraries[name] = next((root / d / name for d in LIBRARY_DIRS if (root / d / name).is_file()), None)
    return CudaRuntime(source, root, provider, libraries, _ort_version_at(root))


def _ort_version_at(root: Path) -> str | None:
    """The version in the folder's onnxruntime(-gpu) dist-info (PyInstaller copies it: pyinstaller.spec)."""
    for info in sorted(root.glob("onnxruntime*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        if name in ("onnxruntime", "onnxruntime_gpu") and version:
            return version
    return None


def candidate_runtimes() -> list[CudaRuntime]:
    """The CUDA runtimes this process could use, in the order they are tried."""
    import onnxruntime as ort

    from medflip_core.processes import trainer_addon

    roots: list[tuple[Path, str]] = []
    if os.environ.get(RUNTIME_ENV):
        roots.append((Path(os.environ[RUNTIME_ENV]), RUNTIME_ENV))
    roots.append((Path(ort.__file__).resolve().parent.parent, "this installation"))
    addon = trainer_addon()
    if addon is not None:  # its folder; or, when the executable is a link to it, the folder of the target
        roots += [(addon.parent, "the trainer add-on"), (addon.resolve().parent, "the trainer add-on")]
    found: list[CudaRuntime] = []
    for root, source in roots:
        runtime = runtime_at(root, source)
        if runtime is not None and runtime.root.resolve() not in {r.root.resolve() for r in found}:
            found.append(runtime)
    return found


MIN_DRIVER_CUDA = 13000  # the CUDA provider is built for CUDA 13: a driver that supports it (580 or newer)


def driver_loadable() -> str | None:
    """None when the NVIDIA driver's library loads; otherwise why not (the loader's own words)."""
    try:
        ctypes.CDLL(DRIVER_LIBRARY)
    except OSError as exc:
        return str(exc)
    return None


def driver_problem() -> str | None:
    """Why the installed driver cannot serve the CUDA provider (too old for CUDA 13, or no GPU visible to it), or
    None. Asked through the driver itself before any CUDA library is loaded: the provider's device discovery is
    not safe on a driver that reports no device."""
    return driver_query()[0]


def driver_query(library: str | None = None) -> tuple[str | None, int]:
    """(why the driver cannot serve, or None; the GPUs it sees), asked with cuInit, cuDriverGetVersion and
    cuDeviceGetCount of `library` (default the system's driver)."""
    count = ctypes.c_int(0)
    try:
        cuda = ctypes.CDLL(library or DRIVER_LIBRARY)
        if cuda.cuInit(0) != 0:
            return "the NVIDIA driver did not initialise (no usable GPU, or CUDA_VISIBLE_DEVICES hides them)", 0
        version = ctypes.c_int(0)
        if cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return "the NVIDIA driver did not say which CUDA it supports", 0
        if version.value < MIN_DRIVER_CUDA:
            major, minor = divmod(version.value, 1000)
            return (f"the NVIDIA driver supports CUDA {major}.{minor // 10}, and the CUDA provider needs CUDA 13 "
                    "(driver 580 or newer)"), 0
        if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
            return "the NVIDIA driver sees no GPU", 0
    except (OSError, AttributeError) as exc:
        return f"the NVIDIA driver could not be asked about its GPUs ({exc})", 0
    return None, count.value


def check_runtime(runtime: CudaRuntime) -> str | None:
    """Why this runtime cannot serve this process's ONNX Runtime (None: it can be tried)."""
    import onnxruntime as ort

    if runtime.ort_version is None:
        return (f"{runtime.source} ({runtime.root}) does not say which ONNX Runtime its CUDA provider belongs "
                f"to, and a provider from another version can crash the app")
    if runtime.ort_version != ort.__version__:
        return (f"{runtime.source} has the CUDA provider of ONNX Runtime {runtime.ort_version}, but this app runs "
                f"{ort.__version__}: install the add-on of the same release as the app")
    return None


_registered: dict[str, Path] = {}  # registration name -> provider library: ONNX Runtime keeps it per process
_lock = threading.RLock()  # engines are made on worker threads: one registration, one choice per process


def is_builtin(runtime: CudaRuntime) -> bool:
    """The runtime is this process's own onnxruntime-gpu: its CUDA provider is used the classic way (a provider
    list), not registered as a plugin."""
    import onnxruntime as ort

    return (runtime.root.resolve() == Path(ort.__file__).resolve().parent.parent
            and CUDA_EP in ort.get_available_providers())


def load_runtime(runtime: CudaRuntime) -> None:
    """Load the runtime's CUDA libraries and, unless it is this process's own onnxruntime-gpu, register its
    provider with ONNX Runtime (once per process). Raises MedflipError with the reason when that fails (no
    driver, a library that will not load)."""
    with _lock:
        if _registered:
            if runtime.provider in _registered.values():
                return
            loaded = next(iter(_registered.values()))
            raise MedflipError(f"another CUDA runtime is already loaded in this process ({loaded})")
        problem = check_runtime(runtime)
        if problem:
            raise MedflipError(problem)
        _load_libraries(runtime)
        if is_builtin(runtime):
            _load_builtin_provider(runtime)
        else:
            _register(runtime)
        _registered[CUDA_EP] = runtime.provider


def _load_libraries(runtime: CudaRuntime) -> None:
    """The CUDA libraries, by full path and globally, so the provider's own links resolve to them."""
    if _WINDOWS:  # let the provider's own dependencies resolve from the runtime's folders
        for d in LIBRARY_DIRS:
            if (runtime.root / d).is_dir():
                os.add_dll_directory(str(runtime.root / d))
    mode = getattr(ctypes, "RTLD_GLOBAL", 0)
    lacking = []
    for name in (*REQUIRED_LIBRARIES, *OPTIONAL_LIBRARIES):
        path = runtime.libraries.get(name)
        try:
            ctypes.CDLL(str(path) if path is not None else name, mode=mode)  # else: the system's, by name
        except OSError as exc:
            if name not in REQUIRED_LIBRARIES:
                continue
            if path is not None:
                raise MedflipError(f"{name} from {runtime.source} does not load: {exc}") from exc
            lacking.append(name)
    if lacking:
        raise MedflipError(f"{runtime.source} ({runtime.root}) lacks {', '.join(lacking)}, and the system's library "
                           "path has no such library either (install CUDA 13 and cuDNN 9, or the trainer add-on)")


def _load_builtin_provider(runtime: CudaRuntime) -> None:
    """Open the provider library the way onnxruntime's provider list will, so that what it lacks (the driver)
    is found now, with a reason, and not as a failed session later."""
    try:
        ctypes.CDLL(str(runtime.provider), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
    except OSError as exc:
        if DRIVER_LIBRARY in str(exc):
            raise MedflipError(f"the NVIDIA driver ({DRIVER_LIBRARY}) is not installed") from exc
        raise MedflipError(f"the CUDA provider of {runtime.source} does not load: {exc}") from exc


def _register(runtime: CudaRuntime) -> None:
    import onnxruntime as ort

    try:
        ort.register_execution_provider_library(CUDA_EP, str(runtime.provider))
    except Exception as exc:  # onnxruntime's own error type; the loader's message is inside
        text = str(exc)
        if DRIVER_LIBRARY in text:
            raise MedflipError(f"the NVIDIA driver ({DRIVER_LIBRARY}) is not installed") from exc
        if "already registered" not in text.lower():
            raise MedflipError(f"ONNX Runtime did not load the CUDA provider of {runtime.source}: {text}") from exc


def cuda_devices() -> tuple:
    """The GPUs the registered CUDA provider offers (empty when none is registered or it sees no GPU)."""
    import onnxruntime as ort

    return tuple(d for d in ort.get_ep_devices() if d.ep_name == CUDA_EP)


_chosen: dict[bool, InferenceDevice] = {}


def inference_device(prefer_gpu: bool = True) -> InferenceDevice:
    """Where sessions run in this process. A GPU, or the lack of a driver, is final for the process; a driver
    without a usable runtime is asked again at the next model, so installing the add-on needs no restart."""
    with _lock:
        if prefer_gpu in _chosen:
            return _chosen[prefer_gpu]
        device = _choose(prefer_gpu)
        log.info("%s", device.note)
        if device.on_gpu or not device.driver:
            _chosen[prefer_gpu] = device
        return device


def gpu_failed(why: str) -> InferenceDevice:
    """The GPU chosen could not run a model: the CPU from now on in this process (a restart asks again), so that
    every later model does not fail on the GPU first."""
    device = _cpu(f"the GPU could not load the model ({why})")
    with _lock:
        _chosen[True] = device
    log.warning("%s", device.note)
    return device


def _cpu(why: str, runtime: CudaRuntime | None = None, driver: bool = True) -> InferenceDevice:
    return InferenceDevice((CPU_EP,), f"Inference runs on the CPU: {why}.", runtime=runtime, driver=driver)


def _choose(prefer_gpu: bool) -> InferenceDevice:
    if not prefer_gpu:
        return _cpu("the GPU was not asked for", driver=False)
    if sys.platform == "darwin":
        return _cpu("ONNX Runtime has no CUDA on macOS", driver=False)
    if driver_loadable() is not None:  # the common case, and cheap: no CUDA library is touched
        return _cpu(f"no NVIDIA driver on this machine ({DRIVER_LIBRARY} is not installed)", driver=False)
    problem, gpus = driver_query()
    if problem:
        return _cpu(problem)
    runtimes = candidate_runtimes()
    if not runtimes:
        return _cpu("an NVIDIA driver is installed, but this app carries no CUDA runtime for ONNX Runtime. "
                    "Install the trainer add-on (it brings one), or set MEDFLIP_CUDA_RUNTIME to a folder with "
                    "onnxruntime-gpu and its nvidia-* libraries")
    reasons = []
    for runtime in runtimes:
        try:
            load_runtime(runtime)
        except MedflipError as exc:
            reasons.append(str(exc))
            continue
        if is_builtin(runtime):
            return InferenceDevice((CUDA_EP, CPU_EP), f"Inference runs on the GPU (CUDA, {gpus} device(s); the "
                                   f"first is used) with {runtime.source}'s onnxruntime-gpu.", (), runtime,
                                   driver=True, builtin=True)
        devices = cuda_devices()
        if not devices:
            return _cpu(f"the CUDA provider of {runtime.source} sees no usable GPU", runtime)
        return InferenceDevice((CUDA_EP, CPU_EP), f"Inference runs on the GPU (CUDA, {len(devices)} device(s); "
                               "the first is used) "
                               f"with the CUDA runtime of {runtime.source} ({runtime.root}).", devices, runtime,
                               driver=True)
    return _cpu("; ".join(reasons))


def diagnose() -> dict:
    """Everything `medflip gpu` reports: the driver, each CUDA runtime found and what loading it gives.
    Unlike inference_device(), it tries to load a runtime even without a driver, to show what else is missing."""
    import onnxruntime as ort

    report: dict = {"onnxruntime": ort.__version__, "driver": DRIVER_LIBRARY, "driver_error": driver_loadable(),
                    "runtimes": []}
    report["driver_problem"] = driver_problem() if report["driver_error"] is None else None
    for runtime in candidate_runtimes():
        entry = {"source": runtime.source, "root": str(runtime.root), "provider": str(runtime.provider),
                 "onnxruntime": runtime.ort_version, "missing": runtime.missing,
                 "libraries": {k: str(v) if v else None for k, v in runtime.libraries.items()},
                 "problem": check_runtime(runtime) or report["driver_problem"], "loaded": False}
        if entry["problem"] is None:  # not with a driver that sees no GPU: the provider's discovery is not safe
            try:
                load_runtime(runtime)
                entry["loaded"] = True
                entry["builtin"] = is_builtin(runtime)
                entry["gpus"] = driver_query()[1] if entry["builtin"] else len(cuda_devices())
            except MedflipError as exc:
                entry["loaded"] = False
                entry["problem"] = str(exc)
        report["runtimes"].append(entry)
    report["device"] = inference_device().note
    return report
