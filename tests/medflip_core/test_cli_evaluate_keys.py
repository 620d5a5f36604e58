"""Issue 31 item 9: `medflip evaluate --json` wrote different keys for a CLIP bundle (n, n_patients, roc_auc_macro,
confusion_matrix, ece with a CI) and a classifier bundle (images, patients, macro_roc_auc, confusion, ece as a bare
number). Both now write metrics.EVALUATION_KEYS, each key the same concept with the same shape, on real films:
the bundled model zero-shot, and a probe classifier made from it on the same films."""

from __future__ import annotations

import json

import pytest

from medflip_core.cli import main
from medflip_core.events import EventWriter
from medflip_core.finetune.probe import ProbeConfig, run_probe
from medflip_core.metrics import EVALUATION_KEYS

PER_CLASS = 30


@pytest.fixture(scope="module")
def folder(kermany_folder):
    return kermany_folder(PER_CLASS)


@pytest.fixture(scope="module")
def classifier(folder, tmp_path_factory):
    """A real classifier bundle: the probe on the bundled model's embeddings of 60 Kermany films (seconds)."""
    work = tmp_path_factory.mktemp("evaluate_keys")
    cfg = ProbeConfig(images=str(folder), out=str(work / "probe"), cache_dir=str(work / "cache"), n_boot=50,
                      val_fraction=0.25)
    return run_probe(cfg, EventWriter(enabled=False)).bundle


def _evaluate(capsys, *args: str) -> dict:
    assert main(["evaluate", *args, "--n-boot", "50", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _is_ci(figure) -> bool:
    return isinstance(figure, dict) and {"value", "ci95"} <= set(figure)


def test_clip_and_classifier_bundles_write_the_same_keys(folder, classifier, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path))  # the classifier's embedding cache
    clip = _evaluate(capsys, str(folder), "--positive", "PNEUMONIA")
    clf = _evaluate(capsys, str(folder), "--model", str(classifier), "--positive", "PNEUMONIA")
    assert list(clip) == list(clf) == list(EVALUATION_KEYS)
    assert (clip["kind"], clf["kind"]) == ("zero-shot", "classifier")
    for r in (clip, clf):  # the same concept has the same shape in both
        assert r["images"] == 2 * PER_CLASS and isinstance(r["patients"], int) and 0 < r["patients"] <= r["images"]
        assert r["images_per_class"] == {"NORMAL": PER_CLASS, "PNEUMONIA": PER_CLASS}
        assert set(r["classes"]) == set(r["data_classes"]) == set(r["roc_auc_per_class"]) == {"NORMAL", "PNEUMONIA"}
        assert r["resampled"] == "patients" and r["n_boot"] == 50 and r["multi_label"] is False
        for key in ("accuracy", "macro_f1", "roc_auc_macro", "roc_auc", "ece"):
            assert _is_ci(r[key]), (r["kind"], key, r[key])
        assert all(_is_ci(v) for v in r["roc_auc_per_class"].values())
        assert r["positive_class"] == "PNEUMONIA" and r["roc_auc"] == r["roc_auc_per_class"]["PNEUMONIA"]
        assert isinstance(r["decision_rule"], str) and isinstance(r["decision_rule_parameters"], dict)
        assert sum(map(sum, r["confusion"]["rows_true_cols_pred"])) == 2 * PER_CLASS and r["confusion"]["kind"]
        assert r["skipped"] == 0 and isinstance(r["notes"], list) and r["seconds"] > 0
        assert r["ece_kind"] == "top-label ECE" and "mean" in r["ece_if_calibrated"]
    assert clip["label_texts"] == ["NORMAL", "PNEUMONIA"] and clf["label_texts"] is None  # no texts: null
    assert clip["out_of_distribution"] == len(clip["out_of_distribution_examples"])
    assert clf["out_of_distribution"] is None  # not checked on cached embeddings: null, never a made-up 0


def test_without_positive_both_say_null_and_the_text_output_reads_the_new_keys(folder, classifier, capsys,
                                                                             monkeypatch, tmp_path):
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path))
    clip = _evaluate(capsys, str(folder))
    clf = _evaluate(capsys, str(folder), "--model", str(classifier))
    assert list(clip) == list(clf) == list(EVALUATION_KEYS)
    assert clip["positive_class"] is clip["roc_auc"] is clf["positive_class"] is clf["roc_auc"] is None
    assert main(["evaluate", str(folder), "--n-boot", "20"]) == 0
    text = capsys.readouterr().out
    assert f"n={2 * PER_CLASS}" in text and "Zero-shot decision rule" in text and "accuracy" in text
    assert main(["evaluate", str(folder), "--model", str(classifier), "--n-boot", "20"]) == 0
    text = capsys.readouterr().out
    assert "macro ROC AUC" in text and "accuracy of the decisions" in text and "calibration error" in text
