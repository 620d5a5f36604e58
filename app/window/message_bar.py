"""A persistent message area above the work area: a short human sentence first, the details on demand.

Errors stay until the user dismisses them (or the same kind of action later succeeds), unlike status-bar
messages, which the next message replaces.
"""

from __future__ import annotations

import re

from PySide6 import QtCore, QtWidgets
from shiboken6 import isValid

SUMMARY_CHARS = 140


def split_message(message: str) -> tuple[str, str]:
    """(short sentence, details): decoder internals in parentheses and long tails go to the details."""
    message = message.strip()
    first_line = message.splitlines()[0] if message else ""
    short = re.split(r"\s\((?=[A-Z][A-Za-z]*(Error|Exception|Warning)\b|Use )", first_line)[0].rstrip(" .:;")
    if len(short) > SUMMARY_CHARS:  # a long message: its first sentence is the headline, the rest is details
        # "e.g.", "i.e.", "vs." and "cf." end no sentence, whatever their case ("E.g." opening a clause)
        first = re.match(r"(?i)(.{20,}?(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bcf)[.;])\s", short)
        if first and len(first[1]) <= SUMMARY_CHARS:
            short = first[1].rstrip(" .;")
    if len(short) > SUMMARY_CHARS:
        short = short[: SUMMARY_CHARS - 1].rstrip() + "…"
    elif short:
        short += "."
    details = message if message.rstrip(".") != short.rstrip(".") else ""
    return short, details


class MessageBar(QtWidgets.QFrame):
    """One message at a time; a newer error replaces an older one, a dismissed one is gone."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setStyleSheet("#messageBar { background: #5c1f1f; border-radius: 4px; } "
                           "#messageBar QLabel { color: #fff3f0; }")
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QtWidgets.QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(lambda on: self.details.setVisible(on))
        close = self.dismiss_button = QtWidgets.QPushButton("Dismiss")
        close.clicked.connect(self.dismiss)
        self._focus_before: QtWidgets.QWidget | None = None  # given back on Dismiss (the Labelling keys need it)
        self.details = QtWidgets.QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(64)
        self.details.setVisible(False)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("⚠"))
        row.addWidget(self.summary, 1)
        row.addWidget(self.details_button)
        row.addWidget(close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(row)
        layout.addWidget(self.details)
        self.source = ""
        self.setVisible(False)

    def show_message(self, message: str, details: str = "", source: str = "") -> None:
        short, more = split_message(message)
        parts: list[str] = []
        seen: set[str] = set()
        for part in (more, details):  # the same text given as message and as details is shown once
            for line in part.splitlines():
                key = line.strip().rstrip(".")
                if key and key not in seen:
                    seen.add(key)
                    parts.append(line)
        if seen == {short.rstrip(".…")}:  # details that only repeat the headline: no Details button
            parts = []
        details = "\n".join(parts)
        self.summary.setText(short)
        self.summary.setToolTip(message)
        self.details.setPlainText(details)
        self.details_button.setVisible(bool(details))
        self.details_button.setChecked(False)
        self.source = source
        focus = QtWidgets.QApplication.focusWidget()
        if focus is not None and not self.isAncestorOf(focus):
            self._focus_before = focus
        self.setVisible(True)

    def text(self) -> str:
        return self.summary.text() if self.isVisible() else ""

    def clear_from(self, source: str) -> None:
        """A later success of the same kind of action makes its old error obsolete."""
        if source and self.source == source:
            self.dismiss()

    def dismiss(self) -> None:
        """Hidden; the focus goes back where it was before the message (a click on Dismiss took it, and Qt would
        hand it to the next widget in the chain: the Labelling tab's keys went dead)."""
        had_focus = self.isAncestorOf(QtWidgets.QApplication.focusWidget())
        self.setVisible(False)
        self.source = ""
        before, self._focus_before = self._focus_before, None
        if had_focus and before is not None and isValid(before) and before.isVisible() and before.isEnabled():
            before.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
