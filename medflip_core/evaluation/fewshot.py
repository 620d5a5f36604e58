"""The few-label protocol, the measure of a model's frozen image features (issue 32; `medflip bench fewshot`).

For k labelled PATIENTS per class, a logistic regression is fitted on the k + k patients of a random draw and
scored (ROC AUC) on every other patient of the task, over patient-disjoint draws. One image per patient in every
task (the first of the patient's files that carries the task's label), so no patient is on both sides:
- kermany_bacterial_viral: Kermany pneumonia films, bacterial (0) vs viral (1), from the file names; patients
  (personN) whose files name both causes are left out.
- kermany_pneumonia_normal: Kermany NORMAL (0) vs PNEUMONIA (1).
- nih_effusion, nih_atelectasis, nih_edema, nih_infiltration, nih_pneumonia: NIH patients with the finding on
  some image (1) vs patients whose every image is No Finding (0); patients with only other findings are out.
- tbx11k_active_obsolete: TBX11K films with an Active Tuberculosis box (1) vs films whose boxes are all
  Obsolete Tuberculosis (0); films without boxes are out (boxes.csv; one film per patient, as the release says).
At most `max_per_class` patients per class (a fixed seeded choice, the same for every model and run). The
logistic regression is not tuned (fixed C): nothing is chosen on the scored patients.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medflip_core.data.image_folder import patient_id_from_name
from medflip_core.errors import MedflipError
from medflip_core.metrics import roc_auc_binary

KS = (5, 10, 20, 40)
DRAWS = 20
MAX_PER_CLASS = 150
MIN_TEST_PER_CLASS = 5  # a k is skipped for a task that would leave fewer scored patients of a class
NIH_FINDINGS = ("Effusion", "Atelectasis", "Edema", "Infiltration", "Pneumonia")
TASKS = ("kermany_bacterial_viral", "kermany_pneumonia_normal", *(f"nih_{f.lower()}" for f in NIH_FINDINGS),
         "tbx11k_active_obsolete")


@dataclass
class Task:
    name: str
    classes: tuple[str, str]  # (label 0, label 1)
    paths: list[Path] = field(default_factory=list)  # one image per patient
    patients: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add(self, path: Path, patient: str, label: int) -> None:
        self.paths.append(path)
        self.patients.append(patient)
        self.labels.append(label)

    def counts(self) -> tuple[int, int]:
        y = np.asarray(self.labels)
        return int((y == 0).sum()), int((y == 1).sum())


def _capped(task: Task, max_per_class: int, seed: int) -> Task:
    """At most `max_per_class` patients per class, a seeded choice that depends on the task's name only."""
    y = np.asarray(task.labels)
    rng = np.random.default_rng([seed, zlib.crc32(task.name.encode())])
    keep: list[int] = []
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        if len(idx) > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        keep.extend(idx.tolist())
    keep.sort()
    out = Task(task.name, task.classes)
    for i in keep:
        out.add(task.paths[i], task.patients[i], task.labels[i])
    return out


def _kermany_tasks(root: Path) -> dict[str, Task]:
    causes: dict[str, dict[str, list[Path]]] = {}
    for path in sorted((root / "PNEUMONIA").iterdir()):
        parts = path.stem.split("_")
        if len(parts) >= 2 and parts[1] in ("bacteria", "virus"):
            causes.setdefault(patient_id_from_name(path.name), {}).setdefault(parts[1], []).append(path)
    cause = Task("kermany_bacterial_viral", ("bacterial", "viral"))
    for pid in sorted(causes):
        found = causes[pid]
        if len(found) == 1:  # one cause named in all of the patient's files
            kind, files = next(iter(found.items()))
            cause.add(files[0], pid, int(kind == "virus"))
    pneumonia = Task("kermany_pneumonia_normal", ("normal", "pneumonia"))
    for label, cls in enumerate(("NORMAL", "PNEUMONIA")):
        firsts: dict[str, Path] = {}
        for path in sorted((root / cls).iterdir()):
            firsts.setdefault(patient_id_from_name(path.name), path)
        for pid in sorted(firsts):
            pneumonia.add(firsts[pid], pid, label)
    return {cause.name: cause, pneumonia.name: pneumonia}


def _nih_tasks(folder: Path) -> dict[str, Task]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_patient: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["Image Index"]):
        by_patient.setdefault(row["Patient ID"], []).append(row)
    tasks = {}
    for finding in NIH_FINDINGS:
        task = Task(f"nih_{finding.lower()}", ("no finding", finding.lower()))
        for pid in sorted(by_patient):
            images = by_patient[pid]
            positive = [r for r in images if r.get(finding) == "1"]
            if positive:
                task.add(folder / "images" / positive[0]["Image Index"], pid, 1)
            elif all(r["Finding Labels"] == "No Finding" for r in images):
                task.add(folder / "images" / images[0]["Image Index"], pid, 0)
        tasks[task.name] = task
    return tasks


def _tbx_task(folder: Path) -> Task:
    findings: dict[str, set[str]] = {}
    with open(folder / "boxes.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            findings.setdefault(row["image"], set()).add(row["finding"])
    task = Task("tbx11k_active_obsolete", ("obsolete", "active"))
    for image in sorted(findings):
        kinds = findings[image]
        if "Active Tuberculosis" in kinds:
            task.add(folder / "images" / image, Path(image).stem, 1)
        elif kinds == {"Obsolete Tuberculosis"}:
            task.add(folder / "images" / image, Path(image).stem, 0)
    return task


def build_tasks(shared: Path, names: Sequence[str] = TASKS, max_per_class: int = MAX_PER_CLASS,
                seed: int = 0) -> dict[str, Task]:
    """The named tasks from the shared data folder, capped per class."""
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise MedflipError(f"unknown few-label task(s) {', '.join(unknown)} (known: {', '.join(TASKS)})")
    found: dict[str, Task] = {}
    if any(n.startswith("kermany") for n in names):
        found.update(_kermany_tasks(shared / "cxr-pneumonia-kermany" / "train"))
    if any(n.startswith("nih") for n in names):
        found.update(_nih_tasks(shared / "cxr-nih-adult"))
    if "tbx11k_active_obsolete" in names:
        found["tbx11k_active_obsolete"] = _tbx_task(shared / "cxr-tb-tbx11k")
    return {n: _capped(found[n], max_per_class, seed) for n in names}


def draws_for(task: Task, k: int, draws: int, seed: int) -> list[np.ndarray] | None:
    """Training indices (k patients of each class) of every draw, or None when a class is too small for k."""
    y = np.asarray(task.labels)
    by_class = [np.flatnonzero(y == c) for c in (0, 1)]
    if min(len(idx) for idx in by_class) < k + MIN_TEST_PER_CLASS:
        return None
    out = []
    for d in range(draws):
        rng = np.random.default_rng([seed, zlib.crc32(task.name.encode()), k, d])
        out.append(np.sort(np.concatenate([rng.choice(idx, k, replace=False) for idx in by_class])))
    return out


def fit_and_score(x: np.ndarray, y: np.ndarray, train: np.ndarray, c: float) -> float:
    """ROC AUC on every patient outside `train` of a logistic regression fitted on `train` (features
    standardised with the training draw's own mean and spread)."""
    from sklearn.linear_model import LogisticRegression

    test = np.setdiff1d(np.arange(len(y)), train)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit((x[train] - mean) / std, y[train])
    return float(roc_auc_binary(y[test] == 1, clf.decision_function((x[test] - mean) / std)))


def run_protocol(tasks: dict[str, Task], columns: dict[str, np.ndarray | dict[str, np.ndarray]], ks: Sequence[int],
                 draws: int, seed: int, c: float) -> dict:
    """{task: {column: {k: {mean, std, aucs}}}}; `columns[name][task]` is that column's (n, d) matrix."""
    results: dict = {}
    for name, task in tasks.items():
        y = np.asarray(task.labels)
        per_task: dict = {"classes": list(task.classes), "patients": dict(zip(task.classes, task.counts(),
                                                                              strict=True)), "columns": {}}
        splits = {k: draws_for(task, k, draws, seed) for k in ks}
        for col, by_task in columns.items():
            x = by_task[name]
            per_task["columns"][col] = {}
            for k, train_sets in splits.items():
                if train_sets is None:
                    per_task["columns"][col][str(k)] = None
                    continue
                aucs = [fit_and_score(x, y, tr, c) for tr in train_sets]
                per_task["columns"][col][str(k)] = {"mean": float(np.mean(aucs)), "std": float(np.std(aucs)),
                                                    "aucs": aucs}
        results[name] = per_task
    return results


def add_deltas(results: dict, baseline: str) -> None:
    """Each column's draw-by-draw difference from `baseline` (paired: the same draws): mean and spread."""
    for per_task in results.values():
        base = per_task["columns"].get(baseline, {})
        for col, by_k in per_task["columns"].items():
            for k, entry in by_k.items():
                if entry is None or col == baseline or base.get(k) is None:
                    continue
                diff = np.asarray(entry["aucs"]) - np.asarray(base[k]["aucs"])
                entry["vs_pixels"] = {"mean": float(diff.mean()), "std": float(diff.std()),
                                      "draws_ahead": int((diff > 0).sum())}
