"""What stays in sight while a training job runs: Start / Cancel / Resume / Resume folder…, the progress bar,
the status line and, for a fine-tuning job, its validation AUC per class with the small-data warning."""

from __future__ import annotations

from html import escape

from PySide6 import QtWidgets


def auc_summary(metrics: dict) -> tuple[dict[str, float], str] | None:
    """A fine-tuning eval's validation ROC AUC per class and its one-paragraph HTML summary (patient-level CI,
    the data set and patients it was measured on, the job's small-validation warning); None when it has none."""
    per_class = metrics.get("val_auc_per_class")
    if not isinstance(per_class, dict):
        return None
    aucs = {c: float(v) for c, v in per_class.items() if v is not None}
    ci = metrics.get("val_auc_ci95") or {}
    parts = [f"<b>{c}</b> {v:.3f}" + (f" [{ci[c][0]:.3f}–{ci[c][1]:.3f}]" if c in ci else "") for c, v in aucs.items()]
    where = metrics.get("data_set", "validation")
    patients = metrics.get("patients")
    small = metrics.get("small_validation")  # the job's warning: too few validation patients
    return aucs, (f"Validation ROC AUC per class ({where}" + (f", {patients} patients" if patients else "")
                  + "; 95 % CI over patients): " + ", ".join(parts)
                  + (f"<br><b style='color:#ffb347'>⚠ {escape(small)}</b>" if small else ""))


class JobStatus(QtWidgets.QWidget):
    """The job's buttons and read-outs; the Training tab connects the buttons and fills the read-outs."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_button = QtWidgets.QPushButton("Start")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stops after the current step and keeps a checkpoint")
        self.cancel_button.setEnabled(False)
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its latest checkpoint")
        self.resume_button.setEnabled(False)
        self.resume_folder_button = QtWidgets.QPushButton("Resume folder…")
        self.resume_folder_button.setToolTip("Continue any pre-training run folder from its latest checkpoint")
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.resume_button, self.resume_folder_button):
            buttons.addWidget(b)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%p %")
        self.stats = QtWidgets.QLabel("Idle")
        self.stats.setWordWrap(True)
        self.auc_label = QtWidgets.QLabel()
        self.auc_label.setWordWrap(True)
        self.auc_label.setVisible(False)  # shown by a fine-tuning job's evaluations
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.stats)
        layout.addWidget(self.auc_label)

    def running(self, on: bool) -> None:
        """Buttons while a job runs (on) or after it ended (Resume is decided by the caller)."""
        self.start_button.setEnabled(not on)
        self.resume_folder_button.setEnabled(not on)
        self.cancel_button.setEnabled(on)
        if on:
            self.resume_button.setEnabled(False)
