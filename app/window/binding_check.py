"""A start-up check of the Qt binding: refuse a PySide6/shiboken6 build that loses references to None.

shiboken6 6.12.0 returns None from every void C++ method (QPainter.setPen, drawLine, ...) without the reference it
owes. Python 3.11's None is not immortal, so after some ten thousand calls (seconds of live plotting) the
interpreter aborts with "Fatal Python error: none_dealloc", taking the window and every loaded image with it.
constraints.txt pins a build without the bug; this check names the problem when someone installs another.
"""

from __future__ import annotations

import sys

CALLS = 200


def none_references_lost() -> int:
    """How many references to None `CALLS` void QPainter calls lost (0 on a sound binding)."""
    from PySide6 import QtGui

    image = QtGui.QImage(8, 8, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        before = sys.getrefcount(None)
        for _ in range(CALLS):
            painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        return max(0, before - sys.getrefcount(None))
    finally:
        painter.end()


def binding_problem() -> str:
    """A sentence for the user when the installed Qt binding would crash the app ('' when it is sound)."""
    lost = none_references_lost()
    if lost < CALLS // 2:
        return ""
    import PySide6
    import shiboken6

    return (f"This installation has PySide6 {PySide6.__version__} / shiboken6 {shiboken6.__version__}, whose "
            f"Qt calls lose a Python reference each ({min(lost, CALLS)} of {CALLS} lost here): live plots would "
            "crash the app within minutes. Reinstall with the project's pinned versions (make setup, or "
            "pip install -c constraints.txt .).")
