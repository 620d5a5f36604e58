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


def test_an_evaluation_reads_as_words_and_a_small_one_says_so():
    """A GUI walk read "eval at step 200: {'val_accuracy': 1.0, 'val_auc': 1.0}" on 4 validation images."""
    from app.training.job import log_line
    from medflip_core.events import EvalEvent

    data_set = "validation split (patient-disjoint) of the training images"
    small = log_line(EvalEvent(step=200, metrics={"n_val": 4, "val_accuracy": 1.0, "val_auc": 1.0,
                                                  "data_set": data_set}))
    assert small == ("eval at step 200 on 4 validation images: accuracy 1.000, zero-shot ROC AUC 1.000; only 4 "
                     f"images: a figure this small moves a lot by chance ({data_set})")
    large = log_line(EvalEvent(step=10, metrics={"n_val": 400, "val_auc": 0.91234, "data_set": data_set}))
    assert large == f"eval at step 10 on 400 validation images: zero-shot ROC AUC 0.912 ({data_set})"
    assert log_line(EvalEvent(step=3, metrics={"n_val": 0})) == ("eval at step 3 on 0 validation images: nothing "
                                                                  "to measure")
    # a fine-tune's figure is its classifier's, not zero-shot's (a GUI walk)
    tuned = log_line(EvalEvent(step=25, metrics={"n_val": 40, "val_auc": 0.9, "best_val_auc": 0.93}), "finetune")
    assert tuned == "eval at step 25 on 40 validation images: classifier ROC AUC 0.900"
