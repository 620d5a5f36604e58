"""Issue 30 item 2: labels are never lost (journal + atomic CSV), a hand-edited or damaged CSV is refused and left as
it is, reopening resumes with the counts, and a process killed with SIGKILL mid-labelling loses no confirmed answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from medflip_core.data.label_csv import read_label_csv
from medflip_core.errors import MedflipError
from medflip_core.labelling.journal import CSV_NAME, JOURNAL_NAME, LabelJournal

CLASSES = ["No Finding", "Pneumonia"]


@pytest.fixture
def kermany(kermany_folder, tmp_path) -> Path:
    """12 real Kermany films per class in one flat folder (the way a user's study folder looks)."""
    src = kermany_folder(12)
    flat = tmp_path / "films"
    flat.mkdir()
    for f in sorted(src.rglob("*.jpeg")):
        (flat / f.name).symlink_to(f.resolve())
    return flat


def truth(name: str) -> str:
    return "Pneumonia" if name.startswith("person") else "No Finding"


def test_answers_resume_with_counts_and_the_csv_reads_back(kermany, tmp_path):
    place = tmp_path / "labels"
    films = sorted(p.name for p in kermany.iterdir())
    journal = LabelJournal(place, kermany, CLASSES, multi_label=False)
    for name in films[:5]:
        journal.label(name, [truth(name)], patient=name.split("_")[0], chosen_by="in order")
    journal.skip(films[5])
    journal.label(films[6], ["Pneumonia"], patient="p6")
    assert journal.undo()["image"] == films[6]
    again = LabelJournal(place, kermany, CLASSES, multi_label=False)
    assert list(again.answers) == films[:5]
    assert again.state.skipped == {films[5]}
    assert sum(again.state.counts().values()) == 5
    table = read_label_csv(place / CSV_NAME, image_root=kermany)
    assert [p.name for p in table.images] == films[:5]
    assert table.patients == [n.split("_")[0] for n in films[:5]]


def test_a_hand_edited_csv_is_refused_and_not_overwritten(kermany, tmp_path):
    place = tmp_path / "labels"
    journal = LabelJournal(place, kermany, CLASSES, multi_label=False)
    name = sorted(p.name for p in kermany.iterdir())[0]
    journal.label(name, ["No Finding"], patient="x")
    csv = place / CSV_NAME
    edited = csv.read_text().replace("No Finding", "Pneumonia")
    csv.write_text(edited)
    with pytest.raises(MedflipError, match=r"changed outside MedFLIP Studio.*NOT been overwritten"):
        LabelJournal(place, kermany, CLASSES, multi_label=False)
    assert csv.read_text() == edited
    csv.write_bytes(b"\x00\xff garbage")
    with pytest.raises(MedflipError, match="NOT been overwritten"):
        LabelJournal(place, kermany, CLASSES, multi_label=False)
    assert csv.read_bytes() == b"\x00\xff garbage"
    csv.rename(place / "mine.csv")  # moved aside: the labels are written again from the journal
    LabelJournal(place, kermany, CLASSES, multi_label=False)
    assert "No Finding" in csv.read_text()


def test_a_csv_not_written_by_labelling_is_never_overwritten(kermany, tmp_path):
    place = tmp_path / "labels"
    place.mkdir()
    (place / CSV_NAME).write_text("Image Index,Finding Labels,Patient ID\na.png,Pneumonia,1\n")
    with pytest.raises(MedflipError, match=r"not written by labelling.*NOT been overwritten"):
        LabelJournal(place, kermany, CLASSES, multi_label=False)
    assert (place / CSV_NAME).read_text().startswith("Image Index,Finding Labels,Patient ID\na.png")
    assert not (place / JOURNAL_NAME).exists()


def test_a_damaged_journal_line_is_refused_with_its_line_number(kermany, tmp_path):
    place = tmp_path / "labels"
    journal = LabelJournal(place, kermany, CLASSES, multi_label=False)
    for name in sorted(p.name for p in kermany.iterdir())[:3]:
        journal.label(name, [truth(name)], patient="p")
    path = place / JOURNAL_NAME
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"op": "label", "image": 3, garbage'
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    with pytest.raises(MedflipError, match="line 3 of the label journal"):
        LabelJournal(place, kermany, CLASSES, multi_label=False)
    assert path.read_bytes() == before


def test_other_classes_on_the_same_place_are_refused(kermany, tmp_path):
    place = tmp_path / "labels"
    LabelJournal(place, kermany, CLASSES, multi_label=False)
    with pytest.raises(MedflipError, match="started with the classes No Finding, Pneumonia"):
        LabelJournal(place, kermany, ["Normal", "Effusion"], multi_label=False)


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from medflip_core.labelling.journal import LabelJournal
    folder, place = Path(sys.argv[1]), Path(sys.argv[2])
    journal = LabelJournal(place, folder, ["No Finding", "Pneumonia"], multi_label=False)
    for i, f in enumerate(sorted(p.name for p in folder.iterdir()) * 1000):
        journal.label(f, ["Pneumonia" if f.startswith("person") else "No Finding"], patient=f[:6],
                      chosen_by=str(i))
        print(i, f, flush=True)  # confirmed: on disk (journal fsynced, CSV renamed) before this line
""")


def test_sigkill_mid_labelling_loses_no_confirmed_answer(kermany, tmp_path):
    """A child process labels as fast as it can; SIGKILL lands at a random point of a write. Every answer it
    confirmed (printed after `label` returned) is in the journal and in the CSV when the folder is reopened."""
    place = tmp_path / "labels"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(kermany), str(place)], stdout=subprocess.PIPE,
                            text=True, env=env)
    confirmed = []
    deadline = time.monotonic() + 120
    while len(confirmed) < 60 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        confirmed.append(line.split())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    confirmed += [line.split() for line in proc.stdout.read().splitlines() if line.strip()]
    assert len(confirmed) >= 60, "the child did not label"
    journal = LabelJournal(place, kermany, CLASSES, multi_label=False)
    last_seq = {a.image: int(a.chosen_by) for a in journal.answers.values()}
    for i, name in confirmed:
        assert last_seq[name] >= int(i)  # this answer, or a later one for the same film, is there
    rows = read_label_csv(place / CSV_NAME, image_root=kermany)
    assert len(rows) == len(journal.answers) >= len({name for _, name in confirmed})
    assert len(journal.answers) == len({p.name for p in kermany.iterdir()} & set(last_seq))
