"""The trainer log follows its newest line unless the user scrolled up to read (a GUI walk saw the previous job's
last line at the top of the four-line log while a new run was going)."""

from __future__ import annotations


def test_the_log_follows_new_lines_and_leaves_a_reader_where_they_are(window, qtbot):
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    window.resize(1280, 800)
    window.show()
    for i in range(60):
        panel._log(f"line {i}")
    bar = panel.log.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=5000)
    assert bar.value() == bar.maximum()
    bar.setValue(0)  # the user scrolls up to read an earlier line
    panel._log("another line")
    assert bar.value() == 0
    panel._log("$ a new job", to_end=True)
    assert bar.value() == bar.maximum()
