from __future__ import annotations

import pytest

from medflip_core.atomic import atomic_path, write_text_atomic


def test_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_failure_keeps_old_content_and_no_temp_files(tmp_path):
    target = tmp_path / "a.txt"
    write_text_atomic(target, "good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
