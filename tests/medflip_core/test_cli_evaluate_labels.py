"""Issue 31 item 6: `medflip evaluate` with two classes given the same text says so at once, naming the text and
the classes, before it reads a single image (it read 527 films for 10 minutes, then said "duplicates")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_duplicate_label_texts_are_named_before_any_image_is_read(shared_data, tmp_path):
    folder = tmp_path / "data"
    src = shared_data / "cxr-pneumonia-kermany" / "train"
    for cls in ("NORMAL", "PNEUMONIA", "VIRAL"):
        (folder / cls).mkdir(parents=True)
        (folder / cls / "broken.png").write_bytes(b"not a png")
    for cls in ("NORMAL", "PNEUMONIA"):  # real films; VIRAL has none a reader can open
        (folder / cls / "film.jpeg").symlink_to(sorted((src / cls).iterdir())[0])
    proc = subprocess.run([sys.executable, "-m", "medflip_core.cli", "evaluate", str(folder), "--prompt",
                           "PNEUMONIA=pneumonia", "--prompt", "VIRAL=Pneumonia"], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert "the label list has duplicates" in message and "PNEUMONIA and VIRAL" in message, message
    assert "pneumonia" in message.lower() and "--prompt" in message


def test_zero_shot_names_the_duplicated_label(capsys):
    from medflip_core.errors import MedflipError
    from medflip_core.labeler.prompts import build_prompts

    try:
        build_prompts(["Pneumonia", "Effusion", "pneumonia"])
    except MedflipError as exc:
        assert "duplicates: Pneumonia" in str(exc) or "duplicates: pneumonia" in str(exc)
    else:
        raise AssertionError("duplicates accepted")
