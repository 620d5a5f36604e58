"""SIGTERM (a logout, `kill`) closes the real app as its close button does: exit status 0, the session saved, the
reader processes ended without leaked semaphores (a GUI walk's SIGTERM left them, and no saved session)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_sigterm_saves_the_session_and_exits_cleanly(shared_data, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1",
           "MEDFLIP_DATA_DIR": str(tmp_path / "data"), "MEDFLIP_CONFIG_DIR": str(tmp_path / "config")}
    app = subprocess.Popen([sys.executable, "-m", "app.main", "--size", "1100x700",
                            str(shared_data / "dicom" / "RG1_UNCR.dcm")], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(20)  # the window up (about 4 s here), the film opening in the reader processes, the model loading
    assert app.poll() is None, app.communicate()
    app.send_signal(signal.SIGTERM)
    _out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    assert "leaked semaphore" not in err, err
    saved = json.loads((tmp_path / "config" / "settings.json").read_text())
    assert "window_geometry" in saved and "main_splitter" in saved
