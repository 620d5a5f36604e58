"""Zero-shot evaluation and retrieval evaluation of a model bundle on an ImageFolder (no torch)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from medflip_core.data.image_folder import DEFAULT_CLASS_MAP, patient_id_from_name
from medflip_core.data.labelled_sentences import labelled_corpus_part, labelled_sentences
from medflip_core.errors import MedflipError
from medflip_core.imaging import iter_image_files, load_image
from medflip_core.inference.engine import Engine
from medflip_core.inference.zeroshot import EXCLUSIVE, DecisionRule, rule_from_manifest, score_labels
from medflip_core.labeler.labels import CHEXPERT_LABELS, LABEL_INDEX, normalise_label_name
from medflip_core.metrics import evaluation_record, evaluation_summary, precision_at_k


def class_folders(data_dir: str | Path) -> list[Path]:
    root = Path(data_dir)
    if not root.is_dir():
        raise MedflipError(f"{root} is not a folder.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise MedflipError(f"{root} needs at least two class sub-folders (ImageFolder layout).")
    return classes


def embed_folder(engine: Engine, data_dir: str | Path, batch: int = 32, flagged: list[dict] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, list[str], list[str], list[str]]:
    """(embeddings, class indices, class names, paths, skipped messages) of every readable image. `flagged`: a
    list that receives {"path", "warnings"} for each image out of the model's distribution (inference.ood by its
    tags, inference.image_ood by its pixels and embedding)."""
    from medflip_core.inference.image_ood import all_warnings, layout_features

    classes = class_folders(data_dir)
    embs, truth, paths, skipped = [], [], [], []
    for ci, folder in enumerate(classes):
        try:
            files = iter_image_files(folder)
        except MedflipError as exc:
            raise MedflipError(f"class folder {folder.name}: {exc}") from exc
        for start in range(0, len(files), batch):
            images = []
            for f in files[start : start + batch]:
                try:
                    images.append(load_image(f))
                    paths.append(str(f))
                except MedflipError as exc:
                    skipped.append(str(exc))
            if images:
                embedded = engine.embed_images(images)
                embs.append(embedded.embedding)
                truth.extend([ci] * len(images))
                if flagged is not None:
                    layouts = layout_features(embedded.patch_tokens, embedded.grid)
                    for rg, emb, layout in zip(images, embs[-1], layouts, strict=True):
                        if found := all_warnings(rg, rg.pixels, emb, engine.ood_reference, layout):
                            flagged.append({"path": str(rg.path), "warnings": found})
    if not embs:
        raise MedflipError(f"no readable images in {data_dir}")
    return np.concatenate(embs), np.array(truth), [c.name for c in classes], paths, skipped


def check_distinct_labels(classes: list[str], label_texts: list[str]) -> None:
    """Two class folders scored with the same text cannot be told apart: said at once, naming the text and the
    classes (not after every image has been read)."""
    seen: dict[str, list[str]] = {}
    for cls, text in zip(classes, label_texts, strict=True):
        seen.setdefault(text.strip().lower(), []).append(cls)
    clashes = [(text, group) for text, group in seen.items() if len(group) > 1]
    if clashes:
        said = "; ".join(f"“{text}” for {' and '.join(group)}" for text, group in clashes)
        raise MedflipError(f"the label list has duplicates: {said}. Give each class its own text (--prompt "
                           "CLASS=TEXT).")


def decision_rule_of(engine: Engine) -> DecisionRule:
    """The decision rule shipped in the bundle (plain softmax over classes for bundles without one)."""
    return rule_from_manifest(engine.bundle.manifest)


def rule_sentence(rule: DecisionRule) -> str:
    """The zero-shot decision rule in words (`medflip evaluate`; its figures: rule.as_dict())."""
    how = ("softmax over the classes' prompt similarities" if rule.mode == "softmax" else
           "softmax over each class's prompt similarity minus its negative prompt's (pairs)")
    bias = ", ".join(f"{label} {value:+.3g}" for label, value in rule.bias.items()) or "none"
    return (f"Zero-shot decision rule: {how}, bias {bias}, temperature {rule.temperature:.3g}; the top class is the "
            f"decision (chosen on: {rule.chosen_on}).")


def class_probabilities(engine: Engine, emb: np.ndarray, label_texts: list[str], rule: DecisionRule) -> np.ndarray:
    """(N, C) probabilities of mutually exclusive classes (the class folders) under the rule."""
    return score_labels(engine, emb, label_texts, kind=EXCLUSIVE, rule=rule).probs


def patients_of(paths: list[str], patient_pattern: str | None = None) -> np.ndarray:
    """Patient id of every image, from its file name (Kermany personN, NIH 8 digits, IM-xxxx, or the name)."""
    return np.array([patient_id_from_name(Path(p).name, patient_pattern) for p in paths])


def evaluate_folder(engine: Engine, data_dir: str | Path, prompts: dict[str, str] | None = None,
                    positive: str | None = None, n_boot: int = 1000, per_image: bool = False,
                    patient_pattern: str | None = None) -> dict:
    """Zero-shot: the class names (or --prompt texts) are all the model is told. CIs resample patients (read from
    the file names). `per_image` adds every image's path, true class and probabilities (for paired comparisons
    and the user's own analysis)."""
    t0 = time.perf_counter()
    prompts = prompts or {}
    names = [c.name for c in class_folders(data_dir)]  # the labels are checked before any image is read
    unknown = set(prompts) - set(names)
    if unknown:
        raise MedflipError(f"--prompt names unknown class folders: {', '.join(sorted(unknown))}")
    label_texts = [prompts.get(n, n) for n in names]
    check_distinct_labels(names, label_texts)
    flagged: list[dict] = []
    emb, truth, names, paths, skipped = embed_folder(engine, data_dir, flagged=flagged)
    rule = decision_rule_of(engine)
    probs = class_probabilities(engine, emb, label_texts, rule)
    summary = evaluation_summary(truth, probs, names, positive=positive, n_boot=n_boot,
                                 groups=patients_of(paths, patient_pattern))
    matrix = summary["confusion_matrix"]
    result = evaluation_record(  # the keys a classifier bundle's evaluation writes too (metrics.EVALUATION_KEYS)
        kind="zero-shot", model=engine.bundle.name, data_set=str(Path(data_dir).resolve()), classes=names,
        data_classes={n: n for n in names}, label_texts=label_texts, multi_label=False,
        decision_rule=rule_sentence(rule), decision_rule_parameters=rule.as_dict(),
        images=summary["n"], patients=summary["n_patients"], images_per_class=summary["n_per_class"],
        resampled=summary["resampled"], n_boot=n_boot, accuracy=summary["accuracy"], macro_f1=summary["macro_f1"],
        roc_auc_per_class=summary["roc_auc_per_class"], roc_auc_macro=summary["roc_auc_macro"],
        positive_class=summary.get("positive_class"), roc_auc=summary.get("roc_auc"),
        best_threshold_accuracy=summary.get("best_threshold_accuracy"),
        ece=summary["ece"], ece_kind="top-label ECE", ece_if_calibrated=summary["ece_if_calibrated"],
        confusion={"kind": "true class (rows) x decided class (columns)", **matrix},
        per_class=summary["per_class"], small_validation=None, skipped=len(skipped), skipped_examples=skipped[:5],
        out_of_distribution=len(flagged), out_of_distribution_examples=flagged[:20], notes=[],
        seconds=round(time.perf_counter() - t0, 2))
    if per_image:
        result["per_image"] = [{"path": p, "truth": names[t], "probs": [round(float(x), 6) for x in row]}
                               for p, t, row in zip(paths, truth, probs, strict=True)]
    return result


def write_per_image_csv(result: dict, path: str | Path) -> None:
    """One row per image: path, true class, one probability column per class (for your own analysis)."""
    import csv

    from medflip_core.atomic import write_text_atomic

    if "per_image" not in result:
        raise ValueError("evaluate with per_image=True to write per-image rows")
    rows = [["path", "truth", *(f"p_{c}" for c in result["classes"])]]
    rows += [[r["path"], r["truth"], *r["probs"]] for r in result["per_image"]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    write_text_atomic(Path(path), buffer.getvalue())


def read_per_image_csv(path: str | Path) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """(paths, true class names, class names of the columns, probabilities (N, C)) from write_per_image_csv."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    classes = [c.removeprefix("p_") for c in rows[0][2:]]
    body = rows[1:]
    probs = np.array([[float(x) for x in r[2:]] for r in body]).reshape(len(body), len(classes))
    return [r[0] for r in body], [r[1] for r in body], classes, probs


def format_evaluation(r: dict) -> str:
    lines = [f"zero-shot evaluation of {r['model']} on {r['data_set']} (n={r['images']}, {r['seconds']} s)",
             f"  label texts: {dict(zip(r['classes'], r['label_texts'], strict=True))}"]

    def ci(m: dict) -> str:
        return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"

    lines.append(f"  {r['decision_rule']}")
    lines.append(f"  95 % CIs resample {r['resampled']} (n patients {r['patients']})")
    lines.append(f"  accuracy  {ci(r['accuracy'])}")
    if r.get("best_threshold_accuracy"):
        lines.append(f"  accuracy at the best threshold on these images (upper bound) "
                     f"{r['best_threshold_accuracy']['value']:.3f}")
    floor = r.get("ece_if_calibrated")
    lines.append(f"  expected calibration error {ci(r['ece'])}" + (
        f" (perfectly calibrated probabilities would score {floor['mean']:.3f}, 90 % range "
        f"{floor['range90'][0]:.3f}-{floor['range90'][1]:.3f}, on this many images)" if floor else ""))
    lines.append(f"  macro-F1  {ci(r['macro_f1'])}")
    if r.get("roc_auc_macro"):
        lines.append(f"  macro ROC AUC {ci(r['roc_auc_macro'])}")
    for name, auc in r["roc_auc_per_class"].items():
        lines.append(f"  ROC AUC {name} (one-vs-rest) {ci(auc)}  n={r['images_per_class'][name]}")
    if r.get("positive_class"):
        lines.append(f"  ROC AUC, positive class {r['positive_class']}: {ci(r['roc_auc'])}")
    if r["skipped"]:
        lines.append(f"  skipped {r['skipped']} unreadable file(s)")
    if r.get("out_of_distribution"):
        first = r["out_of_distribution_examples"][0]
        lines.append(f"  warning: {r['out_of_distribution']} image(s) out of the model's distribution, e.g. "
                     f"{Path(first['path']).name}: {first['warnings'][0]}")
    return "\n".join(lines)


def balanced_sentence_pool(corpus: str | Path, class_labels: list[str] | list[tuple[str, ...]], per_class: int,
                           seed: int = 0, held_out: float = 0.0) -> tuple[list[str], np.ndarray]:
    """Sentences positive for exactly one of the classes (a class is one label or a tuple of labels, e.g.
    PNEUMONIA = (Pneumonia, Lung Opacity) as training labels it), at most `per_class` of each; with `held_out`
    > 0 only sentences of the held-out reports (split by report, never seen in training)."""
    if held_out > 0:
        sentences, labels = labelled_corpus_part(corpus, "held_out", held_out)
    else:
        sentences, labels = labelled_sentences(corpus)
    groups = [(c,) if isinstance(c, str) else tuple(c) for c in class_labels]
    positive = np.stack([(labels[:, [LABEL_INDEX[lb] for lb in g]] > 0).any(axis=1) for g in groups], axis=1)
    rng = np.random.default_rng(seed)
    pool, pool_labels = [], []
    counts = []
    for ci in range(len(class_labels)):
        only = np.flatnonzero(positive[:, ci] & (positive.sum(axis=1) == 1))
        counts.append(len(only))
        chosen = rng.permutation(only)[:per_class]
        pool.extend(sentences[i] for i in chosen)
        pool_labels.extend([ci] * len(chosen))
    n = min(counts)
    if n == 0:
        raise MedflipError(f"the corpus has no sentences for some of the classes {class_labels}")
    # balance: the same number of sentences for every class
    keep = np.concatenate([np.flatnonzero(np.array(pool_labels) == c)[: min(n, per_class)]
                           for c in range(len(class_labels))])
    return [pool[i] for i in keep], np.array(pool_labels)[keep]


def training_corpus_holdout(engine: Engine, corpus: str | Path) -> tuple[float, str]:
    """(held-out report fraction to evaluate on, a sentence saying why) from the bundle's training config.

    A corpus the model did not train on is used whole; the training corpus only through its held-out reports;
    a model that trained on every report of it gets a warning (P@K then measures fit to training text).
    """
    from medflip_core.bundles.bundle import sha256_file

    cfg = (engine.bundle.manifest.get("provenance") or {}).get("training_config") or {}
    trained = cfg.get("corpus")
    same = False
    if trained:
        trained_path, corpus_path = Path(trained), Path(corpus)
        if trained_path.is_file() and corpus_path.is_file():
            same = sha256_file(trained_path) == sha256_file(corpus_path)
        else:
            same = trained_path.name == corpus_path.name
    if not same:
        return 0.0, "the model did not train on this corpus (by its training config): every report is used"
    fraction = float(cfg.get("corpus_holdout") or 0.0)
    if fraction > 0:
        return fraction, (f"sentences of the {fraction:.0%} of reports held out of training (split by report), "
                          "minus any sentence also written in a training report")
    return 0.0, ("WARNING: the model trained on every report of this corpus, so P@K measures fit to training "
                 "text, not retrieval of unseen reports")


def retrieval_eval(engine: Engine, data_dir: str | Path, corpus: str | Path, ks: list[int] | None = None,
                   class_labels: dict[str, str] | None = None, per_class: int = 200,
                   held_out: float | None = None, n_boot: int = 1000, patient_pattern: str | None = None) -> dict:
    """Precision@K of image -> sentence retrieval; a hit is a sentence whose label matches the image's class.
    95 % CIs resample patients (a patient's images are drawn together).

    `held_out` None: the held-out reports the bundle's training config names (training_corpus_holdout).
    """
    from medflip_core.metrics import bootstrap_ci

    t0 = time.perf_counter()
    if held_out is None:
        held_out, pool_note = training_corpus_holdout(engine, corpus)
    else:
        pool_note = f"sentences of the {held_out:.0%} held-out reports" if held_out > 0 else "every report"
    ks = ks or [1, 2, 5, 10]
    emb, truth, names, paths, skipped = embed_folder(engine, data_dir)
    mapping = class_labels or {}
    # a folder's labels: --prompt FOLDER=LABEL, else the class map training uses (PNEUMONIA -> Pneumonia + Lung
    # Opacity, NORMAL -> No Finding), else the folder name itself
    labels = [(normalise_label_name(mapping[n]),) if n in mapping else DEFAULT_CLASS_MAP.get(
        n.lower(), (normalise_label_name(n),)) for n in names]
    bad = [lb for group in labels for lb in group if lb not in CHEXPERT_LABELS]
    if bad:
        raise MedflipError(f"classes must map to the label space for retrieval evaluation: {bad} "
                           "(use --prompt FOLDER=LABEL)")
    pool, pool_labels = balanced_sentence_pool(corpus, labels, per_class, held_out=held_out)
    scores = emb @ engine.embed_texts(pool).T
    k_max = max(ks)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k_max]
    p_at_k = precision_at_k(pool_labels[order], truth, ks)
    hits = pool_labels[order] == truth.reshape(-1, 1)
    patients = patients_of(paths, patient_pattern)
    p_at_k_ci = {k: bootstrap_ci(np.mean, hits[:, :k].mean(axis=1), n_boot=n_boot, groups=patients).as_dict()
                 for k in ks if k <= hits.shape[1]}
    return {"data_set": str(Path(data_dir).resolve()), "corpus": str(corpus), "model": engine.bundle.name,
            "classes": {n: " + ".join(g) for n, g in zip(names, labels, strict=True)}, "n_images": int(len(truth)),
            "pool_size": len(pool), "pool_per_class": int(len(pool) // len(names)),
            "chance": 1.0 / len(names), "precision_at_k": p_at_k, "precision_at_k_ci": p_at_k_ci,
            "n_patients": len(set(patients.tolist())), "resampled": "patients", "skipped": len(skipped),
            "pool_reports": pool_note, "held_out_fraction": held_out,
            "seconds": round(time.perf_counter() - t0, 2)}


def format_retrieval(r: dict) -> str:
    ci = r.get("precision_at_k_ci") or {}

    def interval(k) -> str:
        c = ci.get(k) or ci.get(str(k))
        return f" [{c['ci95'][0]:.3f}–{c['ci95'][1]:.3f}]" if c else ""

    pk = ", ".join(f"P@{k} {v:.3f}{interval(k)}" for k, v in r["precision_at_k"].items())
    return (f"retrieval of {r['model']} on {r['data_set']} ({r['n_images']} images) against a balanced pool of "
            f"{r['pool_size']} sentences from {r['corpus']} (chance {r['chance']:.2f}): {pk}\n"
            f"  pool: {r['pool_reports']}; 95 % CIs over {r.get('n_patients', '?')} patients")


def per_finding_auc(engine: Engine, table, min_patients: int = 10, n_boot: int = 1000) -> dict:
    """Zero-shot ROC AUC of every finding of a multi-label LabelTable with at least `min_patients` positive
    patients, from independent per-finding probabilities (positive vs negative prompt), CIs resampling patients.
    NIH names are scored through their CheXpert label (Effusion -> Pleural Effusion); unmapped ones are skipped."""
    from medflip_core.data.label_csv import label_space_names
    from medflip_core.inference.zeroshot import INDEPENDENT
    from medflip_core.metrics import bootstrap_ci, roc_auc_binary

    emb = engine.embed_images([load_image(p) for p in table.images]).embedding
    patients = np.array(table.patients)
    out = {}
    for ci, name in enumerate(table.classes):
        mapped = label_space_names(name)
        positive = table.targets[:, ci] > 0
        n_pat = len(set(patients[positive]))
        if not mapped or n_pat < min_patients or positive.all():
            continue
        score = score_labels(engine, emb, [mapped[0]], kind=INDEPENDENT).probs[:, 0]
        auc = bootstrap_ci(roc_auc_binary, positive, score, n_boot=n_boot, groups=patients).as_dict()
        out[name] = {"label": mapped[0], "positive_images": int(positive.sum()), "positive_patients": n_pat, **auc}
    return {"n_images": len(table), "n_patients": int(len(set(table.patients))), "min_patients": min_patients,
            "per_finding": out}
