from __future__ import annotations

from pathlib import Path

import pytest

from medflip_core.events import DoneEvent


@pytest.fixture
def probe_in_training_tab(qtbot):
    """run(window, folder) -> the Training panel after a probe fine-tune of `folder` started from its form, once the
    job has ended without an error and completed."""

    def run(window, folder: Path):
        qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
        panel = window.training
        window.tabs.setCurrentWidget(panel)
        panel.form.job.setCurrentIndex(panel.form.job.findData("finetune"))
        assert panel.form.mode.currentText() == "probe"
        panel.form.images.setText(str(folder))
        panel.status.start_button.click()
        assert panel.process is not None
        qtbot.waitUntil(lambda: panel.process is None, timeout=240000)
        assert not panel.last_error, panel.last_error
        assert isinstance(panel.events[-1], DoneEvent) and panel.events[-1].status == "completed"
        return panel

    return run
