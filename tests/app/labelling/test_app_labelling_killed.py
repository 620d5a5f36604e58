"""Issue 30, item 2, with the app itself killed: a real main window (offscreen) in a child process labels a study
with the keyboard; SIGKILL lands at a random answer; every answer the window had confirmed is in the CSV, and the
folder reopened in a new window resumes with the counts."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medflip_core.data.label_csv import read_label_csv
from medflip_core.labelling.journal import LabelJournal

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
CLASSES = ["No Finding", "Pneumonia"]

CHILD = r"""
import sys, time
from PySide6 import QtWidgets
from PySide6.QtTest import QTest
app = QtWidgets.QApplication(["medflip-studio"])
from app.window.main_window import MainWindow
win = MainWindow()
win.resize(1280, 800)
win.show()
ws = win.labelling
win.tabs.setCurrentWidget(ws)
ws.place.setCurrentIndex(ws.place.findData("beside"))
ws.folder.setText(sys.argv[1])
ws.start()
deadline = time.monotonic() + 300
while ws.job is None or not ws.job.prepared or ws.job.film is None:
    app.processEvents()
    time.sleep(0.01)
    if time.monotonic() > deadline:
        raise SystemExit("the films were never ready: " + ws.status.text())
print("ready", flush=True)
i = 0
while ws.job.film is not None:
    while not ws.film_on_screen():  # a user answers the film they see: the keys wait for its pixels
        app.processEvents()
        time.sleep(0.001)
    name = ws.job.film.name
    QTest.keyClick(ws, "2" if name.startswith("person") else "1")  # the key a user presses
    print(i, name, flush=True)  # the window took the key and moved on: the answer is confirmed
    i += 1
    app.processEvents()
"""


@pytest.fixture
def study(shared_data, tmp_path) -> Path:
    flat = tmp_path / "study"
    flat.mkdir()
    for cls in ("NORMAL", "PNEUMONIA"):
        for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / cls).iterdir())[:20]:
            (flat / f.name).symlink_to(f)
    return flat


def test_sigkill_of_the_app_mid_labelling_loses_no_confirmed_answer(study, tmp_path, qtbot):
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen",
           "MEDFLIP_CONFIG_DIR": str(tmp_path / "config"), "MEDFLIP_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(study)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
    kill_after = random.Random().randint(5, 30)
    confirmed: list[tuple[int, str]] = []
    deadline = time.monotonic() + 400
    try:
        while len(confirmed) < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip() != "ready":
                i, name = line.split()
                confirmed.append((int(i), name))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    confirmed += [(int(a), b) for a, b in (ln.split() for ln in proc.stdout.read().splitlines()
                                           if ln.strip() and ln.strip() != "ready")]
    assert len(confirmed) >= kill_after, proc.stderr.read()[-3000:]
    journal = LabelJournal(study, study, CLASSES, multi_label=False)
    for _, name in confirmed:
        expected = ("Pneumonia",) if name.startswith("person") else ("No Finding",)
        assert journal.answers[name].labels == expected
    rows = read_label_csv(study / "labels.csv", image_root=study)
    assert len(rows) == len(journal.answers) >= len(confirmed)

    # reopened in a new window: it resumes with the counts and offers a film not yet answered
    from app.window.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    ws = win.labelling
    win.tabs.setCurrentWidget(ws)
    ws.place.setCurrentIndex(ws.place.findData("beside"))
    ws.folder.setText(str(study))
    ws.start()
    assert ws.job is not None, ws.status.text()
    qtbot.waitUntil(lambda: ws.job.prepared and ws.job.film is not None, timeout=300_000)
    assert ws.job.answered == len(journal.answers)
    assert ws.job.film.name not in journal.answers
