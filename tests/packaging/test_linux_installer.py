"""The Linux installer scripts, run for real against a user home in tmp_path (no root, no desktop needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINUX = REPO / "packaging" / "linux"


def _desktop_keys(text: str) -> dict[str, str]:
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:])


@pytest.fixture
def archive(tmp_path) -> Path:
    """An unpacked release laid out as build_linux.sh lays it out; the 'app' is a script that logs its args."""
    root = tmp_path / "MedFLIPStudio-0.1.0-linux-x86_64"
    app = root / "MedFLIPStudio"
    (app / "_internal" / "resources").mkdir(parents=True)
    shutil.copytree(REPO / "resources" / "icons", app / "_internal" / "resources" / "icons")
    exe = app / "MedFLIPStudio"
    exe.write_text('#!/bin/sh\necho "$@" > "$HOME/launched-with"\n')
    exe.chmod(0o755)
    for name in ("install.sh", "uninstall.sh", "medflip-studio.desktop.in", "medflip-studio-mime.xml"):
        shutil.copy2(LINUX / name, root / name)
    return root


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    # the app's own user data (models, runs) lives here and must survive install, reinstall and uninstall
    runs = home / ".local" / "share" / "medflip-studio" / "runs" / "my-run"
    runs.mkdir(parents=True)
    (runs / "state.json").write_text("{}")
    return home


def _sh(script: Path, home: Path) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=60)


def test_install_registers_the_app_icon_and_file_types_then_uninstall_removes_them(archive, home):
    proc = _sh(archive / "install.sh", home)
    assert proc.returncode == 0, proc.stderr
    appdir = home / ".local" / "opt" / "medflip-studio"
    share = home / ".local" / "share"
    assert (appdir / "MedFLIPStudio").is_file() and os.access(appdir / "MedFLIPStudio", os.X_OK)
    keys = _desktop_keys((share / "applications" / "medflip-studio.desktop").read_text())
    assert keys["Exec"] == f'"{appdir}/MedFLIPStudio" %F' and keys["Type"] == "Application"
    assert set(keys["MimeType"].rstrip(";").split(";")) == {"application/dicom", "image/png", "image/jpeg"}
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / f"{keys['Icon']}.png").is_file()
    assert "research use only" in keys["Comment"].lower()
    launcher = home / ".local" / "bin" / "medflip-studio"
    assert launcher.resolve() == (appdir / "MedFLIPStudio").resolve()
    # the installed desktop entry's command line really starts the installed app with the file
    subprocess.run([str(launcher), "/data/chest.dcm"], check=True, env={"HOME": str(home)}, timeout=30)
    assert (home / "launched-with").read_text().strip() == "/data/chest.dcm"

    proc = _sh(appdir / "uninstall.sh", home)
    assert proc.returncode == 0, proc.stderr
    assert not appdir.exists() and not launcher.exists()
    assert not (share / "applications" / "medflip-studio.desktop").exists()
    assert (share / "medflip-studio" / "runs" / "my-run" / "state.json").is_file()


def test_reinstall_replaces_the_app_and_keeps_user_data(archive, home):
    assert _sh(archive / "install.sh", home).returncode == 0
    (archive / "MedFLIPStudio" / "NEW").write_text("v2")
    assert _sh(archive / "install.sh", home).returncode == 0
    appdir = home / ".local" / "opt" / "medflip-studio"
    assert (appdir / "NEW").read_text() == "v2"
    assert not Path(f"{appdir}.old").exists() and not Path(f"{appdir}.new").exists()
    assert (home / ".local" / "share" / "medflip-studio" / "runs" / "my-run" / "state.json").is_file()


def test_install_refuses_to_replace_a_folder_that_is_not_an_installation(archive, home):
    foreign = home / ".local" / "opt" / "medflip-studio"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    proc = _sh(archive / "install.sh", home)
    assert proc.returncode != 0 and "not a MedFLIP Studio installation" in proc.stderr
    assert (foreign / "notes.txt").read_text() == "mine"


def test_install_from_an_incomplete_archive_fails_clearly(archive, home):
    (archive / "MedFLIPStudio" / "MedFLIPStudio").unlink()
    proc = _sh(archive / "install.sh", home)
    assert proc.returncode != 0 and "not found" in proc.stderr
    assert not (home / ".local" / "share" / "applications").exists()


def test_dicom_mime_package_matches_by_extension_and_by_magic(shared_data):
    root = ET.parse(LINUX / "medflip-studio-mime.xml").getroot()
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    mime = root.find("m:mime-type", ns)
    assert mime.get("type") == "application/dicom"
    assert {g.get("pattern") for g in mime.findall("m:glob", ns)} >= {"*.dcm"}
    match = mime.find("m:magic/m:match", ns)
    # the real files in the shared data set carry the DICM magic at byte 128
    sample = next((shared_data / "dicom").glob("*.dcm")).read_bytes()
    offset = int(match.get("offset"))
    assert sample[offset:offset + 4].decode() == match.get("value") == "DICM"
