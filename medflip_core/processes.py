"""How to start the trainer or the `medflip` command as a separate process: `python -m ...` from a source
checkout, the frozen app itself with --trainer / --medflip (see packaging/launcher.py) when installed.

The installed app comes in two parts: the light app (no torch: viewing, zero-shot, retrieval, batch scoring and
the probe fine-tune run on ONNX Runtime and numpy) and the trainer add-on `MedFLIPStudio-trainer` (torch), which
its own install.sh puts beside the app. The light app looks for the add-on each time a job needs it, so
installing it later enables pre-training without reinstalling (or restarting) the app. When neither the add-on
nor torch is there, `trainer_missing()` is the sentence that says what to install and how.

The trainer is the layer above medflip_core: core starts it as a process and never imports it.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from pathlib import Path

from medflip_core.errors import MedflipError

TRAINER_EXE = "MedFLIPStudio-trainer" + (".exe" if os.name == "nt" else "")  # packaging/trainer_launcher.py
ADDON_DIR = "medflip-studio-trainer"  # its folder, beside the app's installation folder
TRAINER_ENV = "MEDFLIP_TRAINER"  # an explicit path to the add-on's executable (tests, unusual installs)
# `medflip` commands that need torch: in the light app they run in the add-on
TORCH_COMMANDS = frozenset({"export", "reconstruct"})


class TrainerMissing(MedflipError):
    """A job needs the trainer (torch) and neither torch nor the trainer add-on is installed."""


def _frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def torch_importable() -> bool:
    """True when this process could import torch (without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def addon_candidates() -> list[Path]:
    """Where the trainer add-on's executable may be, in the order they are tried."""
    found = [Path(os.environ[TRAINER_ENV])] if os.environ.get(TRAINER_ENV) else []
    if _frozen() and sys.platform != "darwin":  # inside a macOS .app bundle, "beside" would be inside it
        app_dir = Path(sys.executable).resolve().parent  # ~/.local/opt/medflip-studio
        found += [app_dir.parent / ADDON_DIR / TRAINER_EXE,  # ~/.local/opt/medflip-studio-trainer (install.sh;
                  # on Windows the add-on's installer puts it beside the app's folder too)
                  app_dir.parent / TRAINER_EXE.removesuffix(".exe") / TRAINER_EXE]  # both unpacked side by side
    from medflip_core.resources import user_data_dir

    found.append(user_data_dir() / "trainer" / TRAINER_EXE)  # macOS: packaging/macos/install_trainer.sh
    return found


def trainer_addon() -> Path | None:
    """The installed trainer add-on's executable, or None."""
    return next((p for p in addon_candidates() if p.is_file() and os.access(p, os.X_OK)), None)


def _self_trains() -> bool:
    """This interpreter (a source checkout's venv, or an all-in-one frozen build) has torch and the trainer."""
    return torch_importable() and importlib.util.find_spec("trainer") is not None


def trainer_missing() -> str | None:
    """None when the trainer can run; otherwise the sentence that says what to install and how."""
    if _self_trains() or trainer_addon() is not None:
        return None
    what = "Pre-training and partial/full fine-tuning need the trainer (PyTorch), which is not installed"
    probe = "The probe fine-tuning, zero-shot, retrieval and batch scoring work without it."
    if _frozen():
        from medflip_core import __version__

        found = "the next job finds it without reinstalling or restarting the app"
        if sys.platform == "darwin":  # packaging/macos (untested)
            from medflip_core.resources import user_data_dir

            return (f"{what}. Download the trainer add-on MedFLIPStudio-trainer-{__version__}-macos.zip, unpack it "
                    f"and run its install_trainer.sh: it installs into {user_data_dir() / 'trainer'}, and {found}. "
                    f"{probe}")
        where = Path(sys.executable).resolve().parent.parent / ADDON_DIR
        if os.name == "nt":  # packaging/windows (untested)
            from medflip_core.resources import user_data_dir

            return (f"{what}. Download and run the trainer add-on's installer MedFLIPStudio-trainer-{__version__}-"
                    f"setup.exe: it installs into {where}, beside this app (or into {user_data_dir() / 'trainer'} "
                    f"when this app was installed for all users and the add-on is not), and {found}. {probe}")
        return (f"{what}. Download the trainer add-on MedFLIPStudio-trainer-{__version__}-linux-x86_64.tar.gz, "
                f"unpack it and run its ./install.sh: it installs into {where}, beside this app, and {found}. "
                f"{probe}")
    return (f"{what} in this Python environment ({sys.prefix}). Install it with `make setup` in the source "
            f"checkout, or `pip install -c constraints.txt torch torchvision timm transformers onnx`, or point "
            f"{TRAINER_ENV} at an installed trainer add-on's {TRAINER_EXE}. {probe}")


def trainer_command(args: list[str]) -> tuple[str, list[str]]:
    """(program, arguments) that run `python -m trainer ARGS`, e.g. ARGS = ["pretrain", "--images", ...].
    Raises TrainerMissing (with what to install) when there is no trainer."""
    if _self_trains():
        if _frozen():
            return sys.executable, ["--trainer", *args]
        return sys.executable, ["-m", "trainer", *args]
    addon = trainer_addon()
    if addon is None:
        raise TrainerMissing(trainer_missing() or "the trainer is not installed")
    return str(addon), ["--trainer", *args]


def medflip_command(args: list[str]) -> tuple[str, list[str]]:
    """(program, arguments) that run `medflip ARGS`; a command that needs torch (export) runs in the trainer
    add-on when this app has no torch (and says what to install when neither has it)."""
    if args[:1] and args[0] in TORCH_COMMANDS and not torch_importable():
        addon = trainer_addon()
        if addon is not None:
            return str(addon), ["--medflip", *args]
    if _frozen():
        return sys.executable, ["--medflip", *args]
    return sys.executable, ["-m", "medflip_core.cli", *args]


def worker_start() -> None:
    """Initializer of a spawned worker pool (image decoding, labelling refits): the worker ignores Ctrl-C (it
    reaches the whole process group, and the parent decides: cancel, checkpoint; a worker dying of it would look
    like a crash) and ends itself when its parent has ended, since a parent killed with SIGKILL cannot shut its
    pool down and a worker waiting for work would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_ready, args=(parent.sentinel,), daemon=True).start()


def _exit_when_ready(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent process has ended
    os._exit(0)
