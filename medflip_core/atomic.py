"""Atomic file writes: a reader (or a resumed run) never sees half a file, even after kill -9."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


PRIVATE = 0o600  # owner only, as tempfile.mkstemp makes it (settings, checkpoints, run state)
USER_FILE = 0o666  # what open(path, "w") asks for: the user's umask decides (0644 under umask 022)


def _create_beside(target: Path, mode: int) -> Path:
    """A new empty file beside `target`, created exclusively with `mode` (the kernel applies the umask)."""
    for _ in range(tempfile.TMP_MAX):
        tmp = target.parent / f".{target.name}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {target}")


@contextlib.contextmanager
def atomic_path(target: str | Path, mode: int = PRIVATE) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is fsynced and renamed onto `target`.

    `mode` is the permission the file is created with, less the umask: PRIVATE by default, USER_FILE for
    what a user saves and shares (an exported CSV), which then gets the permissions any other program
    would give it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_beside(target, mode)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: str | Path, text: str, mode: int = PRIVATE) -> None:
    with atomic_path(target, mode) as tmp:
        tmp.write_text(text, encoding="utf-8")
