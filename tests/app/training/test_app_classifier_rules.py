"""Issue 31 items 2, 3 and 4 with a real probe (60 real Kermany films on the bundled model; too few validation
patients to calibrate): fine-tuning names a CLIP base and refuses a classifier; exclusive classes get one decision
by one rule that the table, the bars, the CLI and the model card state alike; an uncalibrated classifier is never
called calibrated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medflip_core.bundles.model_store import default_model_dir

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def medflip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medflip_core.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=900)


@pytest.fixture
def probe(small_probe) -> Path:
    """A real probe classifier (NORMAL / PNEUMONIA) on the bundled model, from 60 films of few patients (the app
    tests' shared one)."""
    return small_probe


@pytest.fixture(scope="module")
def films(shared_data, tmp_path_factory) -> Path:
    """24 real Kermany films the probe did not train on (the last of each class folder) in one folder."""
    folder = tmp_path_factory.mktemp("films31")
    for cls in ("NORMAL", "PNEUMONIA"):
        for f in sorted((shared_data / "cxr-pneumonia-kermany" / "train" / cls).iterdir())[-12:]:
            (folder / f"{cls}_{f.name}").symlink_to(f)
    return folder


def test_item2_a_classifier_is_refused_as_a_base_by_the_command_before_any_work(probe, kermany_folder, tmp_path):
    for mode in ("probe", "partial"):
        out = tmp_path / f"second-{mode}"
        proc = medflip("finetune", "--images", str(kermany_folder(4, tmp_path / f"imgs-{mode}")), "--base", str(probe),
                       "--mode", mode, "--out", str(out))
        assert proc.returncode != 0 and not out.exists()
        assert f"{probe.name} is a classifier, not a CLIP model" in proc.stderr, proc.stderr[-2000:]
        assert f"--base {default_model_dir()}" in proc.stderr  # names the base to use instead
        assert "Traceback" not in proc.stderr


def test_item2_the_training_form_names_the_base_defaulting_to_the_classifiers_clip_model(window, qtbot, probe):
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.use_model_folder(str(probe))
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.path == probe.resolve(),
                    timeout=60000)
    form = window.training.form
    window.tabs.setCurrentWidget(window.training)
    form.job.setCurrentIndex(form.job.findData("finetune"))
    assert form.base.isVisible()
    listed = [form.base.itemData(i) for i in range(form.base.count())]
    assert str(probe.resolve()) not in listed  # classifiers are not offered as a base
    assert form.base_model() == default_model_dir()  # the CLIP model the selected classifier came from
    form.images.setText("/data/labels.csv")
    args = window.training.finetune_args()
    assert args[args.index("--base") + 1] == str(default_model_dir())
    # a classifier that somehow is the choice is refused with a sentence, and nothing starts
    form.base.addItem(f"{probe.name} (folder)", str(probe))
    form.base.setCurrentIndex(form.base.count() - 1)
    messages = []
    window.training.message.connect(messages.append)
    window.training.start()
    assert window.training.process is None and "cannot be the base of a fine-tuning" in messages[-1]


def test_item3_and_4_one_decision_per_film_by_one_stated_rule_never_called_calibrated(window, qtbot, probe, films):
    from medflip_core.inference.engine import Engine

    engine = Engine(probe)
    clf = engine.classifier
    assert clf.calibration.get("method") == "none"  # precondition: too few validation patients to calibrate
    card = (probe / "MODEL_CARD.md").read_text()
    assert "Not calibrated" in card and "Decision: one class per image, from a single operating point" in card
    # the CLI: one decided class per film, the rule and "NOT calibrated" in its header
    proc = medflip("classify", str(films), "--model", str(probe))
    assert "NOT calibrated" in proc.stdout and "calibrated probabilities" not in proc.stdout
    assert clf.rule_sentence() in proc.stdout
    proc = medflip("classify", str(films), "--model", str(probe), "--json")
    report = json.loads(proc.stdout)
    assert report["calibrated"] is False and len(report["results"]) == 24
    for row in report["results"]:
        decided = [c for c, d in row["decisions"].items() if d]
        assert decided == [row["top"]], row  # exactly one, and the top label is it
        cut = row["thresholds"]
        assert sum(cut.values()) == pytest.approx(1.0)  # the two marks are one operating point
        pos = "PNEUMONIA"
        assert (row["scores"][pos] >= cut[pos]) == (row["top"] == pos)

    # the window: bars, the decision and the probability wording; the batch table never contradicts itself
    qtbot.waitUntil(lambda: window.engine is not None, timeout=60000)
    window.use_model_folder(str(probe))
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.bundle.path == probe.resolve(),
                    timeout=60000)
    zs = window.zero_shot
    assert "NOT calibrated" in zs.use_classifier.toolTip()
    window.open_paths([str(films / sorted(p.name for p in films.iterdir())[0])])
    qtbot.waitUntil(lambda: window.last_prediction is not None, timeout=60000)
    pred = window.last_prediction
    assert list(pred.decisions.values()).count(True) == 1
    text = zs.status.text()
    assert "NOT calibrated" in text and "calibrated probabilities" not in text
    assert f"Decided: <b>{pred.top}</b>" in text and "single operating point" in text
    window.tabs.setCurrentWidget(window.batch)
    window.score_folder(str(films))
    qtbot.waitUntil(lambda: len(window.batch.rows) == 24, timeout=240000)
    table = window.batch.table
    headers = [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())]
    top_col, decision_col = headers.index("Top label"), headers.index("Decision")
    for i in range(table.rowCount()):
        assert table.item(i, top_col).text() == table.item(i, decision_col).text() != ""
    assert "NOT calibrated" in window.batch.status.text()
    assert "calibrated probabilities" not in window.batch.status.text()
