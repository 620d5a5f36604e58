"""Batch scoring's progress reads files done of files found, from 0, never a stale or early 100 % (issue 23)."""

from __future__ import annotations


def test_batch_progress_counts_the_folders_files(window, qtbot, shared_data):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)  # the bundled model
    seen: list[tuple[int, int]] = []
    bar = window.load_progress
    bar.valueChanged.connect(lambda v: seen.append((v, bar.maximum())))
    folder = shared_data / "dicom"
    n_files = sum(1 for p in folder.iterdir() if p.suffix.lower() == ".dcm")
    window.score_folder(str(folder))
    assert bar.isVisible() and bar.maximum() == 0  # busy until the files are counted: no number yet
    qtbot.waitUntil(lambda: not bar.isVisible(), timeout=180000)
    values = [v for v, _ in seen]
    assert values == sorted(values) and values[-1] == n_files
    assert {m for _, m in seen if m} == {n_files}  # every reading is "k of the folder's N"
    # it moved before the end; not every file is seen: a task's progress reaches the window at most every 50 ms
    # (app/workers.py), so a window busy painting gets several files' counts as one
    assert any(0 < v < n_files for v in values)
