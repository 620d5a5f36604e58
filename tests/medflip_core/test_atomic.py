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


def test_a_user_file_gets_the_umask_mode_and_internal_files_stay_private(tmp_path):
    """An exported file is created as open() would create it (0644 under umask 022, 0640 under 027); the
    default stays owner-only; replacing a file keeps it atomic (no temporary left)."""
    import os
    import stat

    from medflip_core.atomic import USER_FILE

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "scores.csv", "a,b\n", mode=USER_FILE)
        write_text_atomic(tmp_path / "settings.json", "{}")
        assert stat.S_IMODE((tmp_path / "scores.csv").stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "settings.json").stat().st_mode) == 0o600
        os.umask(0o027)
        write_text_atomic(tmp_path / "scores.csv", "a,b\n1,2\n", mode=USER_FILE)
        assert stat.S_IMODE((tmp_path / "scores.csv").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert (tmp_path / "scores.csv").read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "settings.json"]
