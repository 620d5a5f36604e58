"""scripts/build_default_model.py's few-label records for the card: the ablation's paired differences and the
curves' column names, from `medflip bench fewshot --json` output (its structure written out here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from medflip_core.bundles.model_card import clip_model_card

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("build_default_model", REPO / "scripts" / "build_default_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _column(source: str, feature: str) -> dict:
    return {"source": source, "feature": feature, "cache_key": "k", "embedded_now": 0, "embed_s": 0.0}


def _bench_json(path: Path, columns: dict[str, dict], aucs: dict[str, list[float]], ks=("20",)) -> Path:
    per_column = {c: {k: {"mean": sum(a) / len(a), "std": 0.0, "aucs": a} for k in ks} for c, a in aucs.items()}
    tasks = {"kermany_bacterial_viral": {"classes": ["bacterial", "viral"],
                                         "patients": {"bacterial": 150, "viral": 150}, "columns": per_column}}
    path.write_text(json.dumps({"ks": [int(k) for k in ks], "draws": 3, "seed": 0, "C": 1.0, "columns": columns,
                                "tasks": tasks}))
    return path


def test_ablation_differences_are_paired_over_the_same_draws(tmp_path):
    script = _script()
    columns = {"pixels": _column("raw 32x32 pixels", "pixels"),
               "model1:embedding": _column("ablation-v4-chosen/step-00000600", "embedding"),
               "model2:embedding": _column("ablation-v4-mim0/step-00000600", "embedding"),
               "model2:hidden_mean": _column("ablation-v4-mim0/step-00000600", "hidden_mean")}
    aucs = {"pixels": [0.6, 0.6, 0.6], "model1:embedding": [0.60, 0.70, 0.50],
            "model2:embedding": [0.65, 0.60, 0.55], "model2:hidden_mean": [0.9, 0.9, 0.9]}
    record = script.ablation_record(_bench_json(tmp_path / "a.json", columns, aucs), "600 steps")
    row = record["tasks"]["kermany_bacterial_viral"]
    assert set(row) == {"chosen", "mim0", "pixels"} and set(record["arms"]) == {"chosen", "mim0"}  # pixels: no arm
    assert row["chosen"]["mean"] == pytest.approx(0.6)
    assert row["mim0"]["delta"] == pytest.approx((0.05 - 0.10 + 0.05) / 3)
    assert row["mim0"]["ahead"] == 2
    assert record["arms"]["mim0"] == script.ABLATION_ARMS["mim0"]
    # the card prints it; an arm nobody described, or a JSON without the recipe's run, is refused
    manifest = json.loads((REPO / "resources/models/medflip-default/manifest.json").read_text())
    manifest["provenance"]["ablation"] = record
    card = clip_model_card(manifest)
    assert "## Ablation (600 steps;" in card
    assert "| kermany_bacterial_viral | 0.600 | 0.600 (+0.000, 2/3) | 0.600 |" in card  # pixels last
    columns["model2:embedding"] = _column("ablation-v4-bigger/step-00000600", "embedding")
    with pytest.raises(SystemExit, match="bigger"):
        script.ablation_record(_bench_json(tmp_path / "b.json", columns, aucs), "600 steps")
    del columns["model1:embedding"], aucs["model1:embedding"]
    with pytest.raises(SystemExit, match="ablation-v4-chosen"):
        script.ablation_record(_bench_json(tmp_path / "c.json", columns, aucs), "600 steps")


def test_curves_name_this_model_and_the_one_it_replaces(tmp_path):
    script = _script()
    columns = {"pixels": _column("raw 32x32 pixels", "pixels"),
               "model1:embedding": _column("medflip-default (step 1091)", "embedding"),
               "model2:embedding": _column("medflip-default (step 3309)", "embedding")}
    aucs = {c: [0.5, 0.6, 0.7] for c in columns}
    path = _bench_json(tmp_path / "curves.json", columns, aucs, ks=("5", "20"))
    record = script.fewshot_curves_record(path, this_step=1091, previous_step=3309)
    assert record["columns"] == {
        "pixels": "raw 32x32 pixels", "model1:embedding": "this model (medflip-default (step 1091))",
        "model2:embedding": "the model it replaces (medflip-default (step 3309))"}
    assert record["tasks"]["kermany_bacterial_viral"]["columns"]["pixels"] == {"5": pytest.approx(0.6),
                                                                               "20": pytest.approx(0.6)}
    manifest = json.loads((REPO / "resources/models/medflip-default/manifest.json").read_text())
    manifest["provenance"]["fewshot_curves"] = record
    card = clip_model_card(manifest)
    assert "## Few-label curves (mean ROC AUC at k = 5 / 20" in card
    assert "| kermany_bacterial_viral | 0.600 / 0.600 | 0.600 / 0.600 | 0.600 / 0.600 |" in card


def test_the_few_label_table_names_its_columns_as_the_curves_do(tmp_path):
    script = _script()
    columns = {"pixels": _column("raw 32x32 pixels", "pixels"),
               "model1:embedding": _column("medflip-default (step 400)", "embedding"),
               "model2:embedding": _column("medflip-default (step 1091)", "embedding"),
               "model3:embedding": _column("medflip-default (step 3309)", "embedding"),
               "intensity": _column("film intensity (mean and spread of the 32x32 input)", "intensity")}
    aucs = {c: [0.5, 0.6, 0.7] for c in columns}
    record = script.fewshot_record(_bench_json(tmp_path / "k20.json", columns, aucs), 20, this_step=400,
                                   previous_step=1091)
    assert record["columns"] == {
        "pixels": "raw 32x32 pixels", "model1:embedding": "this model (medflip-default (step 400))",
        "model2:embedding": "the model it replaces (medflip-default (step 1091))",
        "model3:embedding": "medflip-default (step 3309)",
        "intensity": "film intensity (mean and spread of the 32x32 input)"}
    assert record["tasks"]["kermany_bacterial_viral"]["columns"]["intensity"]["mean"] == pytest.approx(0.6)


def test_the_card_says_each_phases_masking(tmp_path):
    """Each phase's row says its masking (a phase at mask 0 trains on the whole film), not one ratio for all."""
    script = _script()
    manifest = json.loads((REPO / "resources/models/medflip-default/manifest.json").read_text())
    phases = manifest["provenance"]["phases"]
    assert [p["mask_ratio"] for p in phases] == [0.75, 0.75, 0.75]
    phases.append({**phases[-1], "run": "v4-unmasked", "mask_ratio": 0.0, "mim_weight": 0.0, "unlabelled": []})
    card = clip_model_card(manifest)
    assert "masking per phase, below" in card and "| MedFLIP image-text, the whole film (mask 0) |" in card
    assert card.count("mask 0.75, random masking") == 3
    # a card written before phases recorded their ratio keeps its old wording
    for p in phases:
        del p["mask_ratio"]
    assert "random masking |" in clip_model_card(manifest) and "mask 0.75" not in clip_model_card(manifest)
    # and the script records it from the run's config
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"batch_size": 32, "model": {"image_size": 224}, "mask_ratio": 0.0,
                                                 "mask_strategy": "random"}))
    (tmp_path / "run.events.jsonl").write_text(json.dumps({"event": "start"}) + "\n" + json.dumps(
        {"event": "done", "status": "completed", "step": 400, "elapsed_s": 1260.0}) + "\n")
    record = script.phase_record(run)
    assert record["mask_ratio"] == 0.0 and record["steps"] == 400 and record["images_seen"] == 400 * 32


def test_the_card_gives_zero_shot_per_finding_and_heat_map_pointing(tmp_path, shared_data):
    """The records come from the two benchmarks' real --json output (small runs of the shipped model), and the card
    shows both sides of the per-finding figures and the pointing game against chance; a manifest without them has
    neither section."""
    from medflip_core.bench.findings import measure as findings
    from medflip_core.bench.pointing import measure as pointing

    script = _script()
    (tmp_path / "f.json").write_text(json.dumps([findings(None, shared_data / "cxr-nih-adult" / "labels.csv",
                                                          n_boot=20, limit=200)], default=float))
    (tmp_path / "p.json").write_text(json.dumps(pointing(None, shared_data / "cxr-tb-tbx11k",
                                                         ("Consolidation", "Pneumonia"), films=16, n_boot=20)))
    manifest = json.loads((REPO / "resources/models/medflip-default/manifest.json").read_text())
    prov = manifest["provenance"]
    prov["zero_shot_findings"] = script.findings_record(tmp_path / "f.json")
    prov["heat_map_pointing"] = script.pointing_record(tmp_path / "p.json")
    card = clip_model_card(manifest)
    assert "## Zero-shot per finding on the NIH ChestX-ray14 adult sample" in card
    held = prov["zero_shot_findings"]["sides"]["held_out"]
    assert f"| finding | patients it held out, {held['patients']} patients | patients it trained on" in card
    assert "| Edema | " in card and "| **mean** | " in card and "do not say that the model tells one finding" in card
    chance = prov["heat_map_pointing"]["chance"]["value"]
    assert f"by chance {chance:.3f}" in card and "| Consolidation | " in card and "| Pneumonia | " in card
    del prov["zero_shot_findings"], prov["heat_map_pointing"]
    assert "Zero-shot per finding" not in clip_model_card(manifest) and "pointing" not in clip_model_card(manifest)
