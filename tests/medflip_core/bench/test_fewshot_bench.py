"""`medflip bench fewshot` on a small real subset: the tasks are built right from the shared data (one image per
patient, labels from file names, labels.csv and boxes.csv), the output is sane, and a re-run embeds nothing."""

from __future__ import annotations

import csv
import json

import numpy as np

from medflip_core.bench import BENCHMARKS
from medflip_core.bench.fewshot import format_table, main
from medflip_core.evaluation.fewshot import build_tasks, draws_for


def test_tasks_from_the_shared_data(shared_data):
    tasks = build_tasks(shared_data, max_per_class=40)
    assert set(tasks) >= {"kermany_bacterial_viral", "nih_effusion", "tbx11k_active_obsolete",
                          "kermany_pneumonia_normal"}
    for task in tasks.values():
        assert len(set(task.patients)) == len(task.patients)  # one image per patient
        assert min(task.counts()) >= 20 and max(task.counts()) <= 40
    cause = tasks["kermany_bacterial_viral"]
    for path, label in zip(cause.paths, cause.labels, strict=True):
        assert ("_virus_" in path.name) == bool(label) and ("_bacteria_" in path.name) != bool(label)
    boxes: dict[str, set[str]] = {}
    with open(shared_data / "cxr-tb-tbx11k" / "boxes.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            boxes.setdefault(row["image"], set()).add(row["finding"])
    tb = tasks["tbx11k_active_obsolete"]
    for path, label in zip(tb.paths, tb.labels, strict=True):
        assert label == int("Active Tuberculosis" in boxes[path.name])
        assert label or boxes[path.name] == {"Obsolete Tuberculosis"}
    with open(shared_data / "cxr-nih-adult" / "labels.csv", newline="") as fh:
        nih = {r["Image Index"]: r for r in csv.DictReader(fh)}
    eff = tasks["nih_effusion"]
    for path, label in zip(eff.paths, eff.labels, strict=True):
        assert (nih[path.name]["Effusion"] == "1") if label else nih[path.name]["Finding Labels"] == "No Finding"
    # draws: k of each class for training, the same draws on every call, too-small classes skipped
    sets = draws_for(cause, 10, 4, 0)
    assert sets is not None and len(sets) == 4 and all(len(s) == 20 for s in sets)
    assert all(np.array_equal(a, b) for a, b in zip(sets, draws_for(cause, 10, 4, 0), strict=True))
    assert sum(np.asarray(cause.labels)[sets[0]]) == 10
    assert draws_for(cause, 38, 4, 0) is None


def test_fewshot_bench_runs_on_a_checkpoint_and_a_bundle(trained_run, tmp_path, capsys):
    assert "fewshot" in BENCHMARKS
    argv = ["--model", str(trained_run), "--model", "medflip-default", "--tasks",
            "kermany_pneumonia_normal,tbx11k_active_obsolete", "--max-per-class", "14", "--ks", "5,10",
            "--draws", "3", "--cache-dir", str(tmp_path / "cache"), "--threads", "2", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first["columns"]) == {"pixels", "intensity", "random:embedding", "random:patch_mean", "model1:embedding",
                                     "model1:patch_mean", "model2:embedding", "model2:patch_mean"}
    assert first["n_images"] == 14 * 4 and first["embedded_now"]["model1"] == 56
    assert first["columns"]["model2:embedding"]["source"].startswith("medflip-default")
    for per_task in first["tasks"].values():
        for by_k in per_task["columns"].values():
            assert by_k["10"] is None  # 14 - 10 leaves fewer than 5 patients of a class to score
            entry = by_k["5"]
            assert len(entry["aucs"]) == 3 and all(0.0 <= a <= 1.0 for a in entry["aucs"])
    # pediatric pneumonia vs normal is visible even in raw pixels and in the shipped model's features
    pneu = first["tasks"]["kermany_pneumonia_normal"]["columns"]
    assert pneu["pixels"]["5"]["mean"] > 0.6 and pneu["model2:embedding"]["5"]["mean"] > 0.7
    assert first["columns"]["intensity"]["source"].startswith("film intensity")
    assert "intensity" in format_table(first)
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert all(n == 0 for n in again["embedded_now"].values())  # every feature came from the cache
    assert again["tasks"] == first["tasks"]
    # the tower's hidden states before the projection: of the checkpoint and the random tower, not of a bundle
    assert main([*argv, "--features", "embedding,hidden_mean,hidden_token"]) == 0
    hidden = json.loads(capsys.readouterr().out)
    assert {"model1:hidden_mean", "model1:hidden_token", "random:hidden_mean"} <= set(hidden["columns"])
    assert "model2:hidden_mean" not in hidden["columns"] and "model1:patch_mean" not in hidden["columns"]
    assert all(n == 0 for n in hidden["embedded_now"].values())  # cached with the others on the first run
    pneu = hidden["tasks"]["kermany_pneumonia_normal"]["columns"]
    assert pneu["model1:embedding"] == first["tasks"]["kermany_pneumonia_normal"]["columns"]["model1:embedding"]
    assert pneu["model1:hidden_mean"]["5"]["aucs"] != pneu["model1:embedding"]["5"]["aucs"]


def test_a_cache_written_before_a_feature_existed_is_filled_in(tmp_path, shared_data):
    from medflip_core.evaluation.features import FeatureCache

    paths = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:3]
    old = FeatureCache(tmp_path, "ckpt-old")
    old.add(paths, {"embedding": np.ones((3, 4))})
    old.save()
    cache = FeatureCache(tmp_path, "ckpt-old")
    assert cache.missing(paths, ("embedding",)) == []
    assert cache.missing(paths, ("embedding", "hidden_mean")) == paths  # embedded again, with every feature
    # a later run that fills in only ITS images: the cache then holds rows with and without the new feature, and is
    # saved (it failed with KeyError 'hidden_mean' when the first row had a feature another lacked)
    cache.add(paths[:2], {"embedding": np.zeros((2, 4)), "hidden_mean": np.zeros((2, 2))})
    cache.save()
    again = FeatureCache(tmp_path, "ckpt-old")
    assert again.missing(paths, ("embedding",)) == []
    assert again.missing(paths, ("embedding", "hidden_mean")) == paths  # kept only where every row has it
