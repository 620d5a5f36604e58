"""packaging/macos/install_trainer.sh is POSIX sh: run for real here, into a throw-away user data folder, and
the add-on lookup the app does on every job (medflip_core/processes.py) then finds what it installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packaging" / "macos" / "install_trainer.sh"


def _unpacked_zip(root: Path, marker: str) -> Path:
    """The zip's layout (make_trainer_zip.sh); the 'add-on' is a script that says which build it is."""
    exe = root / "MedFLIPStudio-trainer" / "MedFLIPStudio-trainer"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!/bin/sh\necho {marker}\n")
    exe.chmod(0o755)
    (root / "install_trainer.sh").write_bytes(SCRIPT.read_bytes())
    return root


def _install(stage: Path, data: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": path or os.environ["PATH"], "HOME": str(data.parent), "MEDFLIP_DATA_DIR": str(data)}
    return subprocess.run(["sh", str(stage / "install_trainer.sh")], capture_output=True, text=True, env=env,
                          timeout=60)


def test_install_puts_the_addon_where_the_app_looks_and_a_reinstall_replaces_it(tmp_path, monkeypatch):
    data = tmp_path / "Application Support" / "medflip-studio"
    (data / "models" / "mine").mkdir(parents=True)
    proc = _install(_unpacked_zip(tmp_path / "v1", "v1"), data)
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(data))
    monkeypatch.delenv("MEDFLIP_TRAINER", raising=False)
    from medflip_core.processes import trainer_addon

    found = trainer_addon()
    assert found == data / "trainer" / "MedFLIPStudio-trainer"
    assert subprocess.run([str(found)], capture_output=True, text=True).stdout.strip() == "v1"
    proc = _install(_unpacked_zip(tmp_path / "v2", "v2"), data)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(found)], capture_output=True, text=True).stdout.strip() == "v2"
    assert not (data / "trainer.new").exists() and not (data / "trainer.old").exists()
    assert (data / "models" / "mine").is_dir()


def test_install_refuses_a_foreign_folder_and_an_incomplete_zip(tmp_path):
    data = tmp_path / "data"
    (data / "trainer").mkdir(parents=True)
    (data / "trainer" / "notes.txt").write_text("mine")
    proc = _install(_unpacked_zip(tmp_path / "zip", "v1"), data)
    assert proc.returncode == 1 and "not a MedFLIP Studio trainer add-on" in proc.stderr
    assert (data / "trainer" / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "install_trainer.sh").write_bytes(SCRIPT.read_bytes())
    proc = _install(empty, tmp_path / "other")
    assert proc.returncode == 1 and "not found" in proc.stderr


def test_the_quarantine_mark_of_a_downloaded_zip_is_lifted_from_the_copy(tmp_path):
    """macOS's own `xattr` (here a stand-in on PATH that records how it is called) is run on the new copy before
    it replaces the installed add-on, so Gatekeeper does not refuse its unsigned libraries."""
    tools = tmp_path / "bin"
    tools.mkdir()
    calls = tmp_path / "xattr.calls"
    (tools / "xattr").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    (tools / "xattr").chmod(0o755)
    data = tmp_path / "data"
    proc = _install(_unpacked_zip(tmp_path / "zip", "v1"), data, path=f"{tools}{os.pathsep}{os.environ['PATH']}")
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().split() == ["-dr", "com.apple.quarantine", f"{data}/trainer.new"]
    assert (data / "trainer" / "MedFLIPStudio-trainer").is_file()
