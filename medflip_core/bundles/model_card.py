"""MODEL_CARD.md of an image-text (CLIP) bundle, generated from its manifest alone, so the two cannot disagree.

Every export writes one (a run trained in the app included); the bundled default model's build script adds its
validation figures to the manifest (provenance.evaluation) and the card then reports them. Classifier bundles
have their own card (medflip_core.finetune.classifier_bundle.model_card).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medflip_core.bundles.bundle import INTENDED_USE, MANIFEST, MODEL_CARD, refresh_file_list


def _number(v: float) -> str:
    """A count as a count (n_val 6, not 6.000), a figure to three decimals."""
    return str(int(v)) if float(v).is_integer() else f"{v:.3f}"


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} (95 % CI {m['ci95'][0]:.3f}–{m['ci95'][1]:.3f})"


# what the card says about a data source it recognises by its path (origin and licence)
KNOWN_SOURCES = {
    "cxr-pneumonia-kermany": "Kermany et al. 2018, pediatric chest X-rays (children aged one to five, one hospital "
                             "in Guangzhou, China), CC BY 4.0",
    "cxr-nih-adult": "NIH ChestX-ray14, an adult sample drawn for pneumonia vs no finding (NIH Clinical Center, USA); "
                     "its labels were mined from reports by NLP and are noisy, Pneumonia most of all",
    "cxr-tb-tbx11k": "TBX11K, Liu et al., CVPR 2020: adult films with tuberculosis from hospitals in China, research "
                     "use, cite the paper",
    "NLMCXR_reports": "Indiana University reports (Open-i), CC BY-NC-ND 4.0, shipped unmodified and read at run time",
}


def _named(path: str) -> str:
    """A data path as a reader can place it: the data set's own folder (not a path on the developers' machine)
    and, for a known source, its origin, patients and licence."""
    parts = Path(path).parts
    key = next((i for i, part in enumerate(parts) if _source(part)), None)
    if key is None:  # a folder of the user's, even one whose name contains a known source's: not described as it
        return path
    return f"{'/'.join(parts[key:])} ({KNOWN_SOURCES[_source(parts[key])]})"


def _source(part: str) -> str:
    """The known source a path component IS (its name, or its name with an archive or table suffix), else ''."""
    for suffix in (".tar.gz", ".tgz", ".zip", ".csv", ""):
        if part.endswith(suffix) and part.removesuffix(suffix) in KNOWN_SOURCES:
            return part.removesuffix(suffix)
    return ""


def _listed(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _what_it_is(manifest: dict, cfg: dict, prov: dict) -> list[str]:
    model = manifest["model"]
    steps = prov.get("training_steps") or prov.get("checkpoint_step")
    wall = prov.get("training_wall_seconds") or prov.get("training_seconds") or 0
    batch = cfg.get("batch_size")
    seen = prov.get("images_seen") or ((steps or 0) * (batch or 0))
    machine = prov.get("machine") or {}
    where = f" on {machine['cpus']} CPU cores ({prov.get('device')})" if machine.get("cpus") else ""
    start = prov.get("init_from")
    phases = prov.get("phases") or []
    if phases:  # trained in phases, the first from random weights: the budget is theirs together
        steps = sum(ph["steps"] for ph in phases)
        wall = sum(ph["wall_seconds"] or 0 for ph in phases)
        seen = sum(ph["images_seen"] for ph in phases)
        init, budget = f"randomly initialised, trained in {len(phases)} phases (listed below)", "In all "
    elif start:  # continued training: say from what, and the earlier model's own budget
        earlier = (f", itself {start['training_steps']} steps in {start['training_wall_seconds'] / 60:.0f} min from "
                   "a random image tower" if start.get("training_steps") and start.get("training_wall_seconds") else "")
        init = (f"initialised from the weights of {start.get('name', 'an earlier model')} (created "
                f"{start.get('created', '?')}, weights sha256 {str(start.get('weights_sha256', '?'))[:12]}…{earlier})")
        budget = "Then trained further for "
    else:
        init, budget = "randomly initialised", ""
    return [
        "## What it is",
        f"A CLIP-style image-text model trained with MedFLIP (loss {cfg.get('loss', '?')}, "
        + ("masking per phase, below" if phases else
           f"mask ratio {cfg.get('mask_ratio', '?')} ({cfg.get('mask_strategy', 'random')} masking)")
        + f", β {cfg.get('beta', '?')}): "
        f"image tower {model['vision']} at {model['image_size']} px, {init}; text tower "
        f"{model.get('text_model') or 'all-MiniLM-L6-v2'} ({cfg.get('text_train', '?')} fine-tuning); shared "
        f"embedding {model['embed_dim']}. {budget}{steps} steps"
        + (f" of batch {batch}" if not phases else "") + f" ({seen:,} images seen) in {wall / 60:.0f} min{where}.",
        "", *_phases(phases)]


def _phases(phases: list[dict]) -> list[str]:
    if not phases:
        return []
    lines = ["| phase (run) | px | loss | steps | images seen | minutes |", "|---|---|---|---|---|---|"]
    for ph in phases:
        loss = ("reconstruction only (masked image modelling)" if not ph["clip_weight"] else
                "MedFLIP image-text" + (f" + reconstruction × {ph['mim_weight']:g}" if ph["mim_weight"] else ""))
        extra = " and images without labels" if ph["unlabelled"] else ""
        ratio = ph.get("mask_ratio")  # not recorded by cards before v4.1
        masking = ("the whole film (mask 0)" if ratio == 0 else
                   f"mask {ratio:g}, {ph['mask_strategy']} masking" if ratio is not None else
                   f"{ph['mask_strategy']} masking")
        lines.append(f"| {ph['run']} | {ph['image_size']} | {loss}{extra}, {masking} | "
                     f"{ph['steps']:,} | {ph['images_seen']:,} | {(ph['wall_seconds'] or 0) / 60:.0f} |")
    return [*lines, "", "Each phase starts from the previous one's last checkpoint (the position table resampled when "
                    "the resolution changes); the reconstruction decoder is training-only and not in this bundle.", ""]


def _data(manifest: dict, cfg: dict, prov: dict) -> list[str]:
    images, extra = _listed(cfg.get("images")), _listed(cfg.get("extra_sources"))
    unlabelled = _listed(cfg.get("unlabelled"))
    folders = [p for p in images if not str(p).lower().endswith(".csv")]
    csvs = [p for p in images if str(p).lower().endswith(".csv")]
    pre = manifest.get("preprocess") or {}
    lines = ["## Data",
             f"- Images: {', '.join(map(_named, images)) or '(not recorded)'}"
             + (f"; plus the label CSV(s) {', '.join(map(_named, extra))} (findings mapped onto the CheXpert labels by "
                "medflip_core.labeler.labels)" if extra else "") + "."
             + (" Class folders map onto the CheXpert label space (NORMAL → No Finding; PNEUMONIA → Pneumonia + "
                "Lung Opacity) unless a class map says otherwise." if folders else "")
             + (" A label CSV's findings map onto the CheXpert label space (medflip_core.labeler.labels); films "
                "labelled only outside it are left out." if csvs else ""),
             f"  {prov.get('n_train_images') or '?'} training images; {cfg.get('val_fraction', 0):.0%} of patients "
             f"of every source held out (seed {cfg.get('seed', 0)})"
             + ("; a Labelling tab CSV holds out the Labelling tab's own validation patients instead (about a "
                "quarter, fixed by patient id)" if csvs else "") + ". Sampling: "
             + (f"source weights {cfg.get('source_weights') or 'equal'}, no finding vs finding balanced within each "
                "source" if extra or csvs else "each epoch a shuffle of the training images")
             + f"; augmentation {'on' if cfg.get('augment') else 'off'} (train only).",
             *([f"- Images without labels (the reconstruction term only; any labels they have are not used): "
                f"{', '.join(map(_named, unlabelled))}."] if unlabelled else []),
             f"- Text: {prov.get('n_sentences') or 'the'} labelled report sentences of "
             f"{_named(cfg.get('corpus') or '?')}; "
             f"{cfg.get('corpus_holdout', 0):.0%} of reports held out of training for retrieval evaluation "
             "(split by report).",
             f"- Preprocessing (training and inference alike): aspect ratio kept, padded to a square of "
             f"{pre.get('image_size')} px (letterbox), grey."]
    if prov.get("data_sha256"):
        hashes = "; ".join(f"{name.replace('_', ' ')} `{digest[:16]}…`" for name, digest in
                           sorted(prov["data_sha256"].items()))
        lines.append(f"- Data hashes (sha256, whole in manifest.json → provenance): {hashes}.")
    return [*lines, ""]


def _rule(manifest: dict) -> list[str]:
    rule = manifest.get("zero_shot_rule")
    if not rule:
        return ["## Zero-shot decision rule",
                "None chosen: zero-shot probabilities are a softmax over the labels' prompt similarities at the "
                "model's temperature. Accuracy at that rule is not calibrated; choose a rule on validation data.", ""]
    lines = ["## Zero-shot decision rule (shipped in manifest.json → zero_shot_rule)",
             f"Mode {rule.get('mode')}, prompt bias {rule.get('bias')}, temperature {rule.get('temperature', 1):.3g}; "
             f"chosen on {rule.get('chosen_on')}, every source weighted alike (criterion: the accuracy on every "
             "source within 0.05 of its best-threshold accuracy, then the lowest worst-source negative "
             "log-likelihood). Accuracy and calibration below are on those same validation patients (fitted: the "
             "mode, a bias and a temperature); ROC AUC depends on the mode only, not on the bias or temperature."]
    check = (manifest.get("provenance", {}).get("evaluation", {}).get("decision_rule", {})
             .get("split_half_check"))
    if check:
        lines.append("Split-half check of that choice (rule chosen on half of each source's validation patients, "
                     "measured on the other half, both ways round, means): " + "; ".join(
                         f"{name} accuracy gap {v['gap']:.3f}, ECE {v['ece']:.3f}" for name, v in check.items())
                     + ". These are the figures to expect from the choice on new patients of these sources.")
    return [*lines, "", *_prompts(manifest)]


def _prompts(manifest: dict) -> list[str]:
    shipped = manifest.get("zero_shot_prompts")
    if not shipped:
        return []
    table = (manifest.get("provenance", {}).get("evaluation", {}).get("prompts", {}).get("candidates")) or []
    lines = ["## Zero-shot prompts (shipped in manifest.json → zero_shot_prompts)",
             f"\"{shipped['name']}\", chosen among parts of the shipped prompt set on the same validation patients "
             "(criterion: the worst source's pneumonia ROC AUC, then the mean); the rule above was chosen for these "
             "prompts. The choice is made on the patients the figures below are measured on, so those AUCs are "
             "optimistic by the selection among the candidates."]
    if table:
        sources = [k[4:-1] for k in table[0] if k.startswith("auc[")]
        lines += ["", "| prompts | " + " | ".join(f"AUC {s}" for s in sources) + " |",
                  "|---|" + "---|" * len(sources)]
        lines += [f"| {row['prompts']} | " + " | ".join(f"{row[f'auc[{s}]']:.3f}" for s in sources) + " |"
                  for row in table]
    return [*lines, ""]


def _figures(prov: dict) -> list[str]:
    fig = prov.get("evaluation")
    lines = ["## How well it does (validation patients never trained on; CIs resample patients)"]
    if not fig:
        metrics = prov.get("validation_metrics") or {}
        known = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        lines.append("Not evaluated on held-out patients yet. Run `medflip evaluate FOLDER --model THIS_BUNDLE` on "
                     "patients it has not seen (the run's validation split, or better another hospital's data).")
        if known:
            lines.append("The trainer's last validation reading (its validation split, images not patients "
                         "resampled): " + ", ".join(f"{k} {_number(v)}" for k, v in sorted(known.items())) + ".")
        return [*lines, ""]
    for name, f in fig.items():
        if not isinstance(f, dict) or "roc_auc_pneumonia" not in f:
            continue
        pk = ", ".join(f"P@{k} {v:.3f}" for k, v in sorted(f["retrieval"]["precision_at_k"].items(),
                                                           key=lambda kv: int(kv[0])))
        lines += [
            f"- {name}: {f['images']} images of {f['patients']} patients {f['per_class']}. Pneumonia vs no finding "
            f"ROC AUC {_ci(f['roc_auc_pneumonia'])}; accuracy {_ci(f['accuracy'])} (best threshold on these images: "
            f"{f['best_threshold_accuracy']:.3f}); expected calibration error {_ci(f['ece'])}"
            + (f" (perfectly calibrated probabilities would score about {f['ece_if_calibrated']['mean']:.3f} on "
               "this many images)" if f.get("ece_if_calibrated") else "") + ".",
            f"  Retrieval, image → sentence against {f['retrieval']['pool_size']} sentences "
            f"(chance {f['retrieval']['chance']:.2f}; {f['retrieval']['pool_reports']}): {pk}.",
        ]
    if any(isinstance(f, dict) and "ece" in f for f in fig.values()):
        lines.append("  (ECE is biased upwards on small sets, and more so in a bootstrap resample, where images "
                     "repeat: its interval can sit above its value. Compare it with the perfectly calibrated "
                     "figure beside it and with the split-half check above.)")
    per = fig.get("NIH_per_finding")
    if per:
        lines += ["", f"Per-finding zero-shot ROC AUC on NIH validation patients (independent probabilities; findings "
                      f"with ≥ {per['min_patients']} positive patients among {per['n_patients']}):"]
        for name, v in per["per_finding"].items():
            lines.append(f"- {name} (as {v['label']}): {_ci(v)}, {v['positive_patients']} positive patients")
        if not per["per_finding"]:
            lines.append("- none reaches the minimum number of positive patients")
    return [*lines, ""]


def _versus_previous(prov: dict) -> list[str]:
    """The model this one replaced, beside it on the same validation patients (same seed and fractions)."""
    old, fig = prov.get("previous_model"), prov.get("evaluation") or {}
    if not old:
        return []
    lines = [f"## Compared with the model it replaces ({old['name']}, created {old.get('created', '?')}, step "
             f"{old.get('checkpoint_step', '?')}, weights sha256 {str(old.get('weights_sha256', '?'))[:12]}…)",
             "Both measured on the same validation patients (split seed "
             f"{old.get('training_config_seed', '?')}, {old.get('val_fraction', 0):.0%} of patients), by the "
             "same script; each with its own prompts and decision rule chosen on those patients.", "",
             f"| validation ROC AUC | {old['name']} before | this model |", "|---|---|---|"]
    for source, value in old.get("roc_auc_pneumonia", {}).items():
        if source in fig:
            now_auc = _ci(fig[source]["roc_auc_pneumonia"])
            lines.append(f"| {source}: pneumonia vs no finding | {_ci(value)} | {now_auc} |")
    now = (fig.get("NIH_per_finding") or {}).get("per_finding", {})
    for name, value in old.get("NIH_per_finding", {}).items():
        if name in now:
            lines.append(f"| NIH: {name} (zero-shot) | {_ci(value)} | {_ci(now[name])} |")
    return [*lines, ""]


def _fewshot_questions(prov: dict) -> list[str]:
    """Which few-label tasks ask a question the training labels never name, and which were trained on: a model
    pre-trained on a label CSV learnt those findings on the task's patients outside its validation split."""
    sources = [Path(str(s)).parent.name or str(s) for s in (prov.get("training_config") or {}).get("extra_sources")
               or []]
    lines = ["- New questions, named by no training label: bacterial vs viral (the label space has no cause) and "
             "TBX11K active vs obsolete (the TBX11K films train without labels, when they train at all)."]
    if sources:
        lines.append(f"- Not new: pneumonia vs normal, and the NIH findings. This model trained on the label CSV(s) "
                     f"of {', '.join(sources)}, so those findings' labels of the task's patients outside its "
                     "validation split were training labels: those rows say how features trained with the label "
                     "serve k labelled patients, not how they answer a new question.")
    else:
        lines.append("- Pneumonia vs normal is in the label space; no label CSV trained this model, so the NIH "
                     "findings were never image labels of these patients.")
    return lines


def _fewshot(prov: dict) -> list[str]:
    """The few-label benchmark: how well a logistic regression on the frozen image features learns a question
    from k labelled patients per class, beside raw pixels."""
    runs = prov.get("fewshot") or []
    lines = []
    for run in runs:
        names = list(next(iter(run["tasks"].values()))["columns"])
        lines += [f"## Few-label image features (`medflip bench fewshot`, k = {run['k']} labelled patients per "
                  f"class, mean ± spread of ROC AUC over {run['draws']} patient-disjoint draws)",
                  "A logistic regression on the frozen features of the k + k patients of a draw, scored on every "
                  "other patient of the task. The images are from the shared folders the models were pre-trained "
                  "on.", "", *_fewshot_questions(prov), "",
                  "| task (patients per class) | " + " | ".join(run["columns"].get(n, n) for n in names) + " |",
                  "|---|" + "---|" * len(names)]
        for task, t in run["tasks"].items():
            counts = ", ".join(f"{c} {n}" for c, n in t["patients"].items())
            lines.append(f"| {task} ({counts}) | " + " | ".join(
                f"{t['columns'][n]['mean']:.3f} ± {t['columns'][n]['std']:.3f}" if n in t["columns"] else "–"
                for n in names) + " |")
        lines.append("")
    return lines


def _fewshot_curves(prov: dict) -> list[str]:
    """The few-label curves: mean ROC AUC at each k (labelled patients per class), per task and feature source."""
    run = prov.get("fewshot_curves")
    if not run:
        return []
    ks, names = run["ks"], list(run["columns"])
    lines = [f"## Few-label curves (mean ROC AUC at k = {' / '.join(str(k) for k in ks)} labelled patients per "
             f"class, {run['draws']} patient-disjoint draws each)",
             "The same protocol as above at every k; a model column is its frozen image embedding. The random "
             "tower has the model's shape and no training: what the architecture gives for nothing.", "",
             "| task | " + " | ".join(run["columns"][n] for n in names) + " |", "|---|" + "---|" * len(names)]
    for task, t in run["tasks"].items():
        cells = [" / ".join("–" if t["columns"].get(n, {}).get(str(k)) is None else
                            f"{t['columns'][n][str(k)]:.3f}" for k in ks) for n in names]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _ablation(prov: dict) -> list[str]:
    """The ablation of the training recipe: one choice changed per arm, every arm measured on the same draws."""
    run = prov.get("ablation")
    if not run:
        return []
    arms = [a for a in run["arms"] if a != run["base"]]
    lines = [f"## Ablation ({run['setting']}; few-label ROC AUC at k = {run['k']}, {run['draws']} draws)",
             f"Each arm changes one choice of `{run['base']}` (this model's recipe) and keeps the seed, data order and "
             "steps (one seed per arm). In brackets: the arm minus the recipe, paired over the same draws, and in "
             "how many draws the arm is ahead.", ""]
    lines += [f"- `{a}`: {run['arms'][a]}" for a in arms]
    pixels = any("pixels" in t for t in run["tasks"].values())
    lines += ["", f"| task | {run['base']} | " + " | ".join(arms) + (" | raw 32x32 pixels |" if pixels else " |"),
              "|---|---|" + "---|" * (len(arms) + pixels)]
    for task, t in run["tasks"].items():
        cells = [f"{t[run['base']]['mean']:.3f}"]
        for a in arms:
            e = t.get(a)
            cells.append("–" if e is None else f"{e['mean']:.3f} ({e['delta']:+.3f}, {e['ahead']}/{run['draws']})")
        if pixels:
            cells.append(f"{t['pixels']['mean']:.3f}" if "pixels" in t else "–")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _findings_and_maps(prov: dict) -> list[str]:
    """What a typed finding's zero-shot score and a heat-map can be trusted for (`medflip bench findings`,
    `medflip bench pointing`)."""
    lines = []
    run = prov.get("zero_shot_findings")
    if run:
        titles = {"held_out": "patients it held out", "trained_on": "patients it trained on (optimistic)"}
        sides = [s for s in ("held_out", "trained_on") if s in run["sides"]]
        lines += [f"## Zero-shot per finding on the {run['data_set']} (`medflip bench findings`)",
                  f"Each finding typed by its NIH name; scored in {run['mode']}. Held-out patients: "
                  f"{run['held_out_rule']}. ROC AUC (95 % CI over patients), positive patients in brackets.", "",
                  "| finding | " + " | ".join(f"{titles[s]}, {run['sides'][s]['patients']} patients" for s in sides)
                  + " |", "|---|" + "---|" * len(sides)]
        first = run["sides"][sides[0]]["per_finding"]
        for name in first:
            cells = []
            for s in sides:
                f = run["sides"][s]["per_finding"][name]
                value = _ci(f) if f["value"] == f["value"] else "–"  # NaN: no positive patient
                cells.append(f"{value} ({f['positive_patients']})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("| **mean** | " + " | ".join(_ci(run["sides"][s]["mean"]) for s in sides) + " |")
        lines += ["", "Half the films of this sample have no finding and most others have pneumonia: a score that "
                  "reads only how abnormal a film looks does well on it, so these figures do not say that the model "
                  "tells one finding from another.", ""]
    point = prov.get("heat_map_pointing")
    if point:
        chance = point["chance"]["value"]
        hits = point["hottest_patch_in_box"]
        lines += [f"## Do heat-maps point at the finding? (`medflip bench pointing`, {point['films']} "
                  f"{point['data_set']} with readers' tuberculosis boxes)",
                  f"The share of films whose heat-map peaks (hottest patch) inside a box; by chance {chance:.3f}.",
                  "", "| label typed | hottest patch in a box | x chance |", "|---|---|---|"]
        for label, f in sorted(hits.items(), key=lambda kv: -kv[1]["value"]):
            lines.append(f"| {label} | {_ci(f)} | {f['value'] / chance:.1f} |")
        lines += ["", "A heat-map shows where the patches resemble the words, not where the finding is.", ""]
    return lines


def clip_model_card(manifest: dict[str, Any]) -> str:
    """The card of an image-text bundle, from its manifest (the same manifest always gives the same text)."""
    prov = manifest.get("provenance") or {}
    cfg = prov.get("training_config") or {}
    lines = [f"# {manifest.get('name', 'MedFLIP model')}: MedFLIP image-text model", "",
             f"**{manifest.get('intended_use', INTENDED_USE)}**", "",
             "Every figure below is read from the bundle's manifest.json, from which this card is generated.", "",
             *_what_it_is(manifest, cfg, prov), *_data(manifest, cfg, prov), *_rule(manifest), *_figures(prov),
             *_versus_previous(prov), *_findings_and_maps(prov), *_fewshot(prov), *_fewshot_curves(prov),
             *_ablation(prov),
             "## Limits",
             "- Trained only on the image sources named above; the figures hold for their held-out patients and say "
             "nothing about other hospitals, scanners or populations.",
             "- Findings other than those measured above are known mostly from report sentences and are not "
             "validated.",
             *(["- A typed label's zero-shot score can say only how abnormal the film looks: the app computes, from "
                "the chest-film reference, how closely each label's score follows the No Finding score (reversed) "
                "over the training films, and marks ∥ a label at 0.95 or more when findings are compared "
                "(`medflip_core/inference/label_specificity.py`). Labels the model was never trained on usually "
                "score this axis alone."] if "ood_reference.npz" in manifest.get("files", {}) else []),
             "- Out-of-distribution inputs (other body parts, animals, photographs) still get scores; the app warns "
             "from the DICOM tags and the pixels" + (", and from how far what the model sees in each part of the "
                                                    "image lies from chest films (ood_reference.npz, `medflip bench "
                                                    "ood`)."
                                                    if "ood_reference.npz" in manifest.get("files", {}) else
                                                    " (this bundle has no chest-film reference for the embedding "
                                                    "check)."),
             f"- The text encoder in ONNX is {'int8-quantised' if manifest.get('text_encoder_quantized') else 'fp32'}"
             f"; weights are {manifest.get('weights_dtype')}; the sentence bank is embedded with that same encoder.",
             "", "Exact commands, configuration, data hashes and machine: manifest.json → provenance.", ""]
    return "\n".join(lines)


def clip_card_is_current(bundle_dir: Path) -> bool:
    """Whether the bundle's card is exactly what its manifest generates (an image-text bundle's card, untouched)."""
    card = Path(bundle_dir) / MODEL_CARD
    manifest = json.loads((Path(bundle_dir) / MANIFEST).read_text(encoding="utf-8"))
    return card.is_file() and card.read_text(encoding="utf-8") == clip_model_card(manifest)


def write_clip_card(bundle_dir: Path) -> None:
    """MODEL_CARD.md generated from the bundle's manifest as it is now, and the bundle's file list refreshed."""
    manifest = json.loads((Path(bundle_dir) / MANIFEST).read_text(encoding="utf-8"))
    (Path(bundle_dir) / MODEL_CARD).write_text(clip_model_card(manifest), encoding="utf-8")
    refresh_file_list(bundle_dir)
