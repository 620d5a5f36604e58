"""Few-label benchmark, the measure of a model's frozen image features (issue 32).

Every image of a task is embedded once by the frozen image tower of each model; then, for k = 5, 10, 20, 40
labelled PATIENTS per class, a logistic regression is fitted on the k + k patients of a random draw and scored
(ROC AUC) on every other patient of the task, over 20 patient-disjoint draws; the mean and the spread (standard
deviation over draws) are printed. The same draws are used, side by side, for the raw 32x32 pixels (the one
preprocessing path at 32 px) and for a randomly initialised tower of the first model's shape, so "better than
pixels" and "better than an untrained tower" are visible, and every model's difference from the pixels is
computed draw by draw (paired).

One image per patient in every task (the first of the patient's files that carries the task's label), so a
draw of k patients is k images and no patient is on both sides:
- kermany_bacterial_viral: Kermany pneumonia films, bacterial (0) vs viral (1), from the file names; patients
  (personN) whose files name both causes are left out.
- kermany_pneumonia_normal: Kermany NORMAL (0) vs PNEUMONIA (1).
- nih_effusion, nih_atelectasis, nih_edema, nih_infiltration, nih_pneumonia: NIH patients with the finding on
  some image (1) vs patients whose every image is No Finding (0); patients with only other findings are out.
- tbx11k_active_obsolete: TBX11K films with an Active Tuberculosis box (1) vs films whose boxes are all
  Obsolete Tuberculosis (0); films without boxes are out (boxes.csv; one film per patient, as the release says).
At most `--max-per-class` patients per class (a fixed seeded choice, the same for every model and run).

A model is a bundle (embedded through its ONNX image encoder, as the app embeds), or a trainer checkpoint or
run folder (its latest checkpoint; the image tower in torch): a run can be measured before it is exported.
Features: the image embedding (`embedding`, what zero-shot and the probe use) and the mean of the projected
patch tokens (`patch_mean`). Features are cached per model (`--cache-dir`), so a re-run embeds nothing again.

Caveats: these are the shared folders, which the bundled models were pre-trained on (with the pneumonia /
no-finding labels only, never bacterial vs viral, the NIH findings or TB activity); a run given the TBX11K
images as `--unlabelled` has reconstructed those films (never their labels). The logistic regression is not
tuned (fixed C, `--C`): nothing is chosen on the scored patients.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medflip_core.atomic import atomic_path
from medflip_core.data.image_folder import patient_id_from_name
from medflip_core.errors import MedflipError
from medflip_core.metrics import roc_auc_binary
from medflip_core.resources import default_shared_data

KS = (5, 10, 20, 40)
DRAWS = 20
MAX_PER_CLASS = 150
MIN_TEST_PER_CLASS = 5  # a k is skipped for a task that would leave fewer scored patients of a class
PIXEL_SIZE = 32
NIH_FINDINGS = ("Effusion", "Atelectasis", "Edema", "Infiltration", "Pneumonia")
TASKS = ("kermany_bacterial_viral", "kermany_pneumonia_normal", *(f"nih_{f.lower()}" for f in NIH_FINDINGS),
         "tbx11k_active_obsolete")
FEATURES = ("embedding", "patch_mean")


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


# ---------------------------------------------------------------------------------------------- features

Extractor = Callable[[list[Path]], dict[str, np.ndarray]]  # paths -> {feature: (n, d)}


@dataclass
class FeatureSource:
    """What embeds images: a model (bundle / checkpoint), a random tower, or the raw pixels."""

    label: str  # printed
    key: str  # cache file name (content-derived)
    features: tuple[str, ...]
    extract: Extractor


class FeatureCache:
    """{path: features} of one source in one .npz (no pickle: an array of path strings and float32 arrays)."""

    def __init__(self, folder: Path | None, key: str) -> None:
        self.file = folder / f"{key}.npz" if folder is not None else None
        self.rows: dict[str, dict[str, np.ndarray]] = {}
        if self.file is not None and self.file.is_file():
            with np.load(self.file, allow_pickle=False) as data:
                names = [str(p) for p in data["paths"]]
                feats = {k[5:]: data[k] for k in data.files if k.startswith("feat_")}
                for i, name in enumerate(names):
                    self.rows[name] = {k: v[i] for k, v in feats.items()}

    def missing(self, paths: Sequence[Path]) -> list[Path]:
        return [p for p in dict.fromkeys(paths) if str(p) not in self.rows]

    def add(self, paths: Sequence[Path], feats: dict[str, np.ndarray]) -> None:
        for i, p in enumerate(paths):
            self.rows[str(p)] = {k: np.asarray(v[i], dtype=np.float32) for k, v in feats.items()}

    def save(self) -> None:
        if self.file is None or not self.rows:
            return
        names = sorted(self.rows)
        kinds = sorted(self.rows[names[0]])
        arrays = {"paths": np.array(names)}
        arrays.update({f"feat_{k}": np.stack([self.rows[n][k] for n in names]) for k in kinds})
        with atomic_path(self.file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def matrix(self, paths: Sequence[Path], feature: str) -> np.ndarray:
        return np.stack([self.rows[str(p)][feature] for p in paths])


def _decode(paths: Sequence[Path], size: int, pre_dict: dict | None = None) -> np.ndarray:
    from medflip_core.imaging import load_image
    from medflip_core.imaging.preprocess import PreprocessConfig, preprocess

    pre = PreprocessConfig.from_dict({**(pre_dict or {}), "image_size": size})
    return np.stack([preprocess(load_image(p), pre) for p in paths])


def pixel_source() -> FeatureSource:
    def extract(paths: list[Path]) -> dict[str, np.ndarray]:
        return {"pixels": _decode(paths, PIXEL_SIZE).reshape(len(paths), -1)}

    return FeatureSource(f"raw {PIXEL_SIZE}x{PIXEL_SIZE} pixels", f"pixels{PIXEL_SIZE}", ("pixels",), extract)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _torch_tower_source(label: str, key: str, model_config: dict, preprocess_dict: dict,
                        state: dict | None, seed: int, threads: int | None) -> FeatureSource:
    """The image tower in torch: trained weights (`state`: the model's state dict), or random at `seed`."""

    def extract(paths: list[Path]) -> dict[str, np.ndarray]:
        import torch

        from medflip_core.model.config import ModelConfig
        from medflip_core.model.image_tower import ImageTower

        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        tower = ImageTower(ModelConfig.from_dict(model_config))
        if state is not None:
            tower.load_state_dict({k[len("image_tower."):]: v for k, v in state.items()
                                   if k.startswith("image_tower.")}, strict=True)
        tower.eval()
        size = int(model_config.get("image_size", 224))
        emb, mean = [], []
        with torch.no_grad():
            for start in range(0, len(paths), 32):
                pixels = torch.from_numpy(_decode(paths[start:start + 32], size, preprocess_dict))
                out = tower(pixels)
                emb.append(out.embedding.numpy())
                mean.append(out.tokens.mean(dim=1).numpy())
        return {"embedding": np.concatenate(emb), "patch_mean": np.concatenate(mean)}

    return FeatureSource(label, key, FEATURES, extract)


def model_source(spec: str, threads: int | None = None) -> tuple[FeatureSource, dict, dict]:
    """(source, model config, preprocessing) of a bundle (name or folder), a checkpoint, or a run folder."""
    from medflip_core.bundles.checkpoint_layout import MODEL_FILE, STATE_FILE, latest_checkpoint

    path = Path(spec)
    ckpt_dir = None
    if (path / STATE_FILE).is_file():
        ckpt_dir = path
    elif path.is_dir() and (latest := latest_checkpoint(path)) is not None:
        ckpt_dir = latest.path
    if ckpt_dir is not None:
        from safetensors.torch import load_file

        state = json.loads((ckpt_dir / STATE_FILE).read_text(encoding="utf-8"))
        weights = ckpt_dir / MODEL_FILE
        key = "ckpt-" + _sha256(weights)[:24]
        source = _torch_tower_source(f"{ckpt_dir.parent.parent.name}/{ckpt_dir.name}", key, state["model_config"],
                                     state["preprocess"], load_file(str(weights)), 0, threads)
        return source, state["model_config"], state["preprocess"]
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.finetune.embedding_cache import model_key
    from medflip_core.inference.engine import Engine

    folder = resolve_model(spec)
    engine = Engine(folder, threads=threads, prefer_gpu=False)
    manifest = engine.bundle.manifest

    def extract(paths: list[Path]) -> dict[str, np.ndarray]:
        from medflip_core.imaging import load_image

        emb, mean = [], []
        for start in range(0, len(paths), 16):
            out = engine.embed_images([load_image(p) for p in paths[start:start + 16]])
            emb.append(out.embedding)
            mean.append(out.patch_tokens.mean(axis=1))
        return {"embedding": np.concatenate(emb), "patch_mean": np.concatenate(mean)}

    label = f"{manifest.get('name', folder.name)} (step {(manifest.get('provenance') or {}).get('checkpoint_step')})"
    return FeatureSource(label, "bundle-" + model_key(engine.bundle), FEATURES, extract), manifest["model"], \
        manifest["preprocess"]


def random_source(model_config: dict, preprocess_dict: dict, seed: int, threads: int | None) -> FeatureSource:
    blob = json.dumps({"model": model_config, "preprocess": preprocess_dict, "seed": seed}, sort_keys=True)
    key = "random-" + hashlib.sha256(blob.encode()).hexdigest()[:24]
    label = f"random init ({model_config.get('vision')} at {model_config.get('image_size')} px, seed {seed})"
    return _torch_tower_source(label, key, model_config, preprocess_dict, None, seed, threads)


def embed(source: FeatureSource, paths: list[Path], cache_dir: Path | None) -> tuple[FeatureCache, int]:
    """The source's features of every path, from the cache where it has them; (cache, images embedded now)."""
    cache = FeatureCache(cache_dir, source.key)
    todo = cache.missing(paths)
    for start in range(0, len(todo), 256):  # saved as it goes: an interrupted run keeps what it embedded
        chunk = todo[start:start + 256]
        cache.add(chunk, source.extract(chunk))
        cache.save()
    return cache, len(todo)


# ---------------------------------------------------------------------------------------------- protocol

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


def default_cache_dir() -> Path:
    from medflip_core.resources import user_data_dir

    return user_data_dir() / "cache" / "fewshot"


def measure(models: Sequence[str], tasks: dict[str, Task], ks: Sequence[int], draws: int, seed: int, c: float,
            cache_dir: Path | None, threads: int | None, with_random: bool = True,
            features: Sequence[str] = FEATURES) -> dict:
    paths = sorted({p for t in tasks.values() for p in t.paths})
    sources: list[tuple[str, FeatureSource]] = [("pixels", pixel_source())]
    model_sources = []
    for spec in models:
        source, mcfg, pre = model_source(spec, threads)
        model_sources.append((source, mcfg, pre))
    if with_random and model_sources:
        _, mcfg, pre = model_sources[0]
        sources.append(("random", random_source(mcfg, pre, seed, threads)))
    for i, (source, _, _) in enumerate(model_sources):
        sources.append((f"model{i + 1}", source))
    columns: dict[str, dict[str, np.ndarray]] = {}
    described: dict[str, dict] = {}
    embedded: dict[str, int] = {}
    for tag, source in sources:
        t0 = time.perf_counter()
        cache, n_new = embed(source, paths, cache_dir)
        embedded[tag] = n_new
        for feature in source.features:
            if tag != "pixels" and feature not in features:
                continue
            col = tag if tag == "pixels" else f"{tag}:{feature}"
            columns[col] = {name: cache.matrix(t.paths, feature) for name, t in tasks.items()}
            described[col] = {"source": source.label, "feature": feature, "cache_key": source.key,
                              "embedded_now": n_new, "embed_s": time.perf_counter() - t0}
    results = run_protocol(tasks, columns, ks, draws, seed, c)
    add_deltas(results, "pixels")
    return {"ks": list(ks), "draws": draws, "seed": seed, "C": c, "max_patients_per_class": None,
            "columns": described, "embedded_now": embedded, "n_images": len(paths), "tasks": results,
            "cache_dir": str(cache_dir) if cache_dir else None}


def format_table(result: dict) -> str:
    ks = result["ks"]
    lines = [f"few-label ROC AUC (logistic regression, C={result['C']}, on k labelled patients per class; mean ± "
             f"spread over {result['draws']} patient-disjoint draws, scored on every other patient; "
             "Δpix: paired mean difference from the raw pixels, draws ahead)"]
    for col, d in result["columns"].items():
        lines.append(f"  {col:<22} {d['source']}" + (f" [{d['feature']}]" if col != "pixels" else ""))
    for name, per_task in result["tasks"].items():
        counts = ", ".join(f"{n} {c}" for n, c in per_task["patients"].items())
        lines.append(f"\n{name} ({counts} patients)")
        lines.append(f"  {'':<22}" + "".join(f"{'k=' + str(k):>24}" for k in ks))
        for col, by_k in per_task["columns"].items():
            cells = []
            for k in ks:
                e = by_k[str(k)]
                if e is None:
                    cells.append(f"{'n/a':>24}")
                    continue
                delta = e.get("vs_pixels")
                extra = f" Δ{delta['mean']:+.3f}/{delta['draws_ahead']}" if delta else ""
                cells.append(f"{e['mean']:.3f}±{e['std']:.3f}{extra}".rjust(24))
            lines.append(f"  {col:<22}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench fewshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None,
                        help="a bundle (name or folder), a trainer checkpoint, or a run folder (its latest "
                             "checkpoint); repeat to compare several on the same draws (default: the bundled "
                             "medflip-default)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of: {', '.join(TASKS)}")
    parser.add_argument("--ks", default=",".join(str(k) for k in KS), help="labelled patients per class")
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--max-per-class", type=int, default=MAX_PER_CLASS,
                        help="patients per class of a task at most (a fixed seeded choice)")
    parser.add_argument("--features", default=",".join(FEATURES), help=f"of the models: {', '.join(FEATURES)}")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    parser.add_argument("--seed", type=int, default=0, help="draws, the per-class choice, the random tower")
    parser.add_argument("--no-random", action="store_true", help="leave out the randomly initialised tower")
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where features are cached (default: the user data folder's cache/fewshot)")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    features = [f.strip() for f in args.features.split(",") if f.strip()]
    if set(features) - set(FEATURES):
        parser.error(f"--features: of {', '.join(FEATURES)}")
    shared = args.data or default_shared_data()
    tasks = build_tasks(shared, names, args.max_per_class, args.seed)
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    result = measure(args.model or ["medflip-default"], tasks, ks, args.draws, args.seed, args.C, cache_dir,
                     args.threads, not args.no_random, features)
    result["max_patients_per_class"] = args.max_per_class
    result["data"] = str(shared)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
