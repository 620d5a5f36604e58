"""Issue 23 item 5: a probe trained on a tiny folder must not be certain about everything.

The case of the issue, on real data: 120 Kermany radiographs (60 per class), the default patient split leaves 23
validation images of 19 patients, 7 of them with pneumonia. Before: AUC 1.000 (CI 1.000-1.000), a temperature at
its bound and exactly 100 % / 0 % on every image, a lower-leg film included. Now: the job says the set is too
small (events, printed summary, model card), the CIs are widened to the exact binomial interval, the calibration
is refused and the probabilities are capped. A folder with 12 pneumonia validation patients is the control: no
warning, a fitted temperature, and still no probability of exactly 0 or 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medflip_core.bundles.bundle import load_bundle
from medflip_core.events import EventWriter
from medflip_core.finetune.calibration import prior_shrinkage
from medflip_core.finetune.probe import ProbeConfig, run_probe
from medflip_core.finetune.validation import MIN_VAL_PATIENTS_PER_CLASS
from medflip_core.imaging import load_image
from medflip_core.inference.classifier import calibrated_probabilities, softmax
from medflip_core.inference.engine import Engine
from medflip_core.metrics import exact_binomial_ci, roc_auc_binary

# real DICOMs the classifier is asked about: two adult chests, the lower leg (EXTREMITY) and a dog's thorax
FILMS = ("RG3_J2KI.dcm", "RG1_UNCR.dcm", "rsna_cr_chest_jpeg_baseline.dcm", "highdicom_dx_animal_lateral.dcm")


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("small_val_cache")  # both folders share their first 60 images


@pytest.fixture(scope="module")
def tiny(shared_data, kermany_folder, tmp_path_factory, cache):
    work = tmp_path_factory.mktemp("tiny_probe")
    folder = kermany_folder(60, work / "kermany_120")
    cfg = ProbeConfig(images=str(folder), out=str(work / "models" / "tiny"), cache_dir=str(cache), n_boot=300)
    events = EventWriter(str(work / "events.jsonl"))
    result = run_probe(cfg, events)
    events.close()
    return folder, result, _events(work / "events.jsonl")


@pytest.fixture(scope="module")
def larger(shared_data, kermany_folder, tmp_path_factory, cache):
    work = tmp_path_factory.mktemp("larger_probe")
    folder = kermany_folder(100, work / "kermany_200")
    cfg = ProbeConfig(images=str(folder), out=str(work / "models" / "larger"), cache_dir=str(cache), n_boot=300)
    return run_probe(cfg, EventWriter(enabled=False))


@pytest.mark.slow
def test_tiny_folder_says_so_in_its_events_and_figures(tiny):
    _, result, events = tiny
    v = result.validation
    # the case of the issue: a perfectly separated validation of a handful of pneumonia patients
    assert v["patients"] < 25 and v["per_class"]["PNEUMONIA"]["patients"] < MIN_VAL_PATIENTS_PER_CLASS
    note = v["small_validation"]
    assert note["minimum_patients_per_class"] == MIN_VAL_PATIENTS_PER_CLASS == 10
    assert "PNEUMONIA" in note["classes"] and "Too few patients" in note["message"]
    assert note["patients"]["PNEUMONIA"]["with"] == v["per_class"]["PNEUMONIA"]["patients"]
    assert "Not calibrated" in note["message"] and "widened" in note["message"]
    # the events a GUI or a script reads: the eval line carries the warning, the done line its full text
    ev = next(e for e in events if e["event"] == "eval")
    assert ev["small_validation"] and "Too few patients" in ev["small_validation"]
    done = events[-1]
    assert done["event"] == "done" and done["warnings"] == [note["message"]]
    # the exposure check on so few patients: its CI widened as the classifier's, so it cannot flag, and it says why
    check = v["exposure_check"]
    assert check["per_class"]["PNEUMONIA"]["widened"] and not check["flagged"]
    assert check["headline"].startswith("Film exposure alone: too few validation patients")
    assert done["validation"]["small_validation"]["classes"] == note["classes"]


@pytest.mark.slow
def test_tiny_folder_widens_every_ci_that_the_bootstrap_could_not(tiny):
    _, result, _ = tiny
    for name, m in result.validation["per_class"].items():
        auc = m["roc_auc"]
        pairs = min(m["patients"], m["negative_patients"])
        lo, hi = exact_binomial_ci(auc["value"] * pairs, pairs)
        assert auc["widened"] and auc["ci95"][0] <= lo + 1e-12 and auc["ci95"][1] >= hi - 1e-12, name
        assert auc["ci95"][0] <= auc["ci95_bootstrap"][0] and auc["ci95"][1] >= auc["ci95_bootstrap"][1]
        if auc["value"] == 1.0:  # the "CI 1.000-1.000": 7 of 7 patients only bound it above 0.59
            assert auc["ci95_bootstrap"] == [1.0, 1.0] and auc["ci95"][0] < 0.7
        for key, n in (("sensitivity", m["patients"]), ("specificity", m["negative_patients"])):
            s_lo, s_hi = exact_binomial_ci(m[key]["value"] * n, n)
            assert m[key]["widened"] and m[key]["ci95"][0] <= s_lo + 1e-12 and m[key]["ci95"][1] >= s_hi - 1e-12


@pytest.mark.slow
def test_tiny_folder_refuses_calibration_and_no_probability_is_0_or_1(tiny, shared_data):
    _, result, _ = tiny
    clf = result.classifier
    assert clf.calibration["method"] == "none" and set(clf.calibration["refused"]) == {"NORMAL", "PNEUMONIA"}
    low, high = np.array(clf.calibration["shrink"]["range"]).T
    assert (low > 0.05).all() and (high < 0.95).all()  # 7 patients: about 11-89 %
    val = clf.probabilities(result.val_embeddings)
    assert (val > 0).all() and (val < 1).all() and np.allclose(val.sum(axis=1), 1.0)
    assert (val >= low - 1e-12).all() and (val <= high + 1e-12).all()
    # the cap is monotone: it keeps the ranking, so the validation AUC is that of the head's raw probabilities
    raw = clf.probabilities(result.val_embeddings, calibrated=False)
    y = result.val_set.indicator()[:, 1].astype(bool)
    assert roc_auc_binary(y, val[:, 1]) == pytest.approx(roc_auc_binary(y, raw[:, 1]))
    engine = Engine(result.bundle)
    preds = engine.predict([load_image(shared_data / "dicom" / f) for f in FILMS])
    for film, pred in zip(FILMS, preds, strict=True):
        p = np.array(list(pred.probabilities.values()))
        assert (p > 0).all() and (p < 1).all() and p.max() < 0.95, (film, pred.probabilities)
    leg = preds[0].probabilities
    assert max(leg.values()) <= high.max() + 1e-12  # the lower-leg film: no longer "100 % pneumonia"


@pytest.mark.slow
def test_tiny_folder_model_card_and_printed_summary_warn(tiny, cache, tmp_path, capsys, monkeypatch):
    from medflip_core.cli import main

    folder, result, _ = tiny
    card = load_bundle(result.bundle).model_card()
    assert "**Warning: Too few patients to judge this classifier" in card
    assert "Not calibrated (too few validation patients to fit it)" in card and "widened" in card
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path))
    out = tmp_path / "again"
    assert main(["finetune", "--images", str(folder), "--out", str(out), "--n-boot", "100",
                 "--cache-dir", str(cache)]) == 0
    printed = capsys.readouterr().out
    assert "WARNING: Too few patients to judge this classifier" in printed
    assert "widened: exact binomial over" in printed


@pytest.mark.slow
def test_evaluate_on_a_few_patients_warns_and_widens(tiny, cache, kermany_folder, tmp_path):
    from medflip_core.finetune.evaluate import evaluate_classifier, format_classifier_evaluation

    _, result, _ = tiny
    few = kermany_folder(6, tmp_path / "few")  # 6 images a class: at most 6 patients of each
    r = evaluate_classifier(Engine(result.bundle), few, n_boot=100, cache_dir=cache)
    assert r["small_validation"] and set(r["small_validation"]["classes"]) == {"NORMAL", "PNEUMONIA"}
    assert all(m["roc_auc"]["widened"] for m in r["per_class"].values())
    text = format_classifier_evaluation(r)
    assert "WARNING: Too few patients to judge this classifier" in text and " widened]" in text


@pytest.mark.slow
def test_enough_validation_patients_fit_a_temperature_without_a_warning(larger, shared_data):
    v = larger.validation
    assert min(min(m["patients"], m["negative_patients"]) for m in v["per_class"].values()) >= 10
    assert v["small_validation"] is None
    cal = larger.classifier.calibration
    assert cal["method"] == "temperature" and "refused" not in cal
    assert 0 < cal["shrink"]["weight"] < 2 / 12 + 1e-12  # 12 patients or more: a cap of at most 2 / (12 + 2)
    card = load_bundle(larger.bundle).model_card()
    assert "Warning" not in card and "Calibrated by temperature scaling on the validation patients" in card
    for m in v["per_class"].values():  # widened only where the bootstrap could not vary
        bootstrap = m["roc_auc"].get("ci95_bootstrap", m["roc_auc"]["ci95"])
        assert ("widened" in m["roc_auc"]) == (bootstrap[0] == bootstrap[1])
    pred = Engine(larger.bundle).predict([load_image(shared_data / "dicom" / "RG3_J2KI.dcm")])[0]
    assert all(0 < p < 1 for p in pred.probabilities.values())


def test_prior_shrinkage_is_laplace_and_keeps_rankings_and_sums():
    four = prior_shrinkage(4, [0.5, 0.5], 2)  # 4 of 4 patients right: the next is right with 5/6
    assert four["range"] == [pytest.approx([1 / 6, 5 / 6]), pytest.approx([1 / 6, 5 / 6])]
    hundred = prior_shrinkage(100, [0.5, 0.5], 2)
    assert hundred["range"][0] == pytest.approx([1 / 102, 101 / 102])
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 30, (200, 3))  # saturated: softmax gives 0 and 1 to the last bit
    y = rng.integers(0, 3, 200)
    cal = {"method": "none", "shrink": prior_shrinkage(5, [0.2, 0.3, 0.5], 3)}
    p = calibrated_probabilities(logits, False, cal)
    assert (softmax(logits) == 1.0).any() and (p > 0).all() and (p < 1).all()
    assert np.allclose(p.sum(axis=1), 1.0)
    moderate = logits / 10  # (saturated ones differ below float precision once shrunk: they tie)
    p = calibrated_probabilities(moderate, False, cal)
    for j in range(3):
        assert roc_auc_binary(y == j, p[:, j]) == pytest.approx(roc_auc_binary(y == j, softmax(moderate)[:, j]))
    multi = {"method": "platt", "scale": [1.0, 1.0], "offset": [0.0, 0.0],
             "shrink": prior_shrinkage([3, 40], [0.4, 0.1], 2)}
    q = calibrated_probabilities(rng.normal(0, 50, (100, 2)), True, multi)
    assert (q[:, 0] >= 0.4 * 2 / 5 - 1e-12).all() and (q[:, 0] <= 1 - 0.6 * 2 / 5 + 1e-12).all()
    assert q[:, 1].max() < 1 and q[:, 1].min() > 0


def test_exact_binomial_ci_known_values():
    assert exact_binomial_ci(5, 10) == (pytest.approx(0.18709, abs=1e-4), pytest.approx(0.81291, abs=1e-4))
    low, high = exact_binomial_ci(4, 4)
    assert low == pytest.approx(0.025 ** (1 / 4)) and high == 1.0
    assert exact_binomial_ci(0, 7) == (0.0, pytest.approx(1 - 0.025 ** (1 / 7)))
