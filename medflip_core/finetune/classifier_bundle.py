"""Write a classifier bundle: the base model's ONNX image tower + the fitted head, and (from a probe) the base
model's text encoder, tokenizer and sentence bank, so zero-shot and retrieval stay available in the same folder.

The folder is built beside the target under a hidden `.NAME.partial-*` name and renamed into place only when
every file, the model card and the manifest (with every file's sha256) are written: a cancelled or failed job
never leaves a half-written bundle where the model store looks. Stale partial folders of the same target are
removed on the next write. The torch weights are not copied: a probe does not change the tower, and a model
card says which base model to fine-tune further.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from medflip_core.atomic import fsync_dir
from medflip_core.bundles.bundle import (
    BANK_NPZ,
    IMAGE_ONNX,
    INTENDED_USE,
    KIND_CLASSIFIER,
    MODEL_CARD,
    OOD_REFERENCE_NPZ,
    TEXT_ONNX,
    TOKENIZER_DIR,
    Bundle,
    bundle_files,
    file_entries,
    write_manifest,
)
from medflip_core.errors import MedflipError
from medflip_core.finetune.validation import calibration_sentence
from medflip_core.inference.classifier import HEAD_NPZ, Classifier

VALIDATION_JSON = "validation.json"
# manifest fields a probe bundle keeps from its base model (the encoders are the base model's files)
_BASE_FIELDS = ("embedding_dim", "logit_scale", "preprocess", "model", "max_text_tokens", "onnx", "label_space",
                "default_labels", "sentence_bank")


def _base_files(base: Bundle, keep_text: bool) -> list[str]:
    names = [IMAGE_ONNX]
    if keep_text:
        names += [n for n in base.manifest.get("files", {}) if n in (TEXT_ONNX, BANK_NPZ)
                  or n.startswith(f"{TOKENIZER_DIR}/")]
    missing = [n for n in names if not base.file(n).is_file()]
    if missing:
        raise MedflipError(f"the base model {base.name} lacks {', '.join(missing)}")
    return names


def _fmt(v: dict) -> str:
    lo, hi = v["ci95"]
    return f"{v['value']:.3f} (95 % CI {lo:.3f}-{hi:.3f}{', widened' if v.get('widened') else ''})"


def _decision_rule(clf: dict[str, Any]) -> str:
    """The one decision rule (inference.classifier.decide), as every view applies it, from the manifest."""
    from medflip_core.inference.classifier import decision_rule_sentence, default_positive

    classes, multi = list(clf["classes"]), bool(clf["multi_label"])
    thresholds = [float(clf["thresholds"][c]) for c in classes]
    positive = None
    if not multi and len(classes) == 2:
        point = clf.get("operating_point")
        positive = classes.index(point) if point in classes else default_positive(classes)
    cal = clf.get("calibration", {})
    calibrated = cal.get("method", "none") != "none" and not cal.get("refused")  # as Classifier.calibrated
    rule = decision_rule_sentence(classes, multi, positive, thresholds, calibrated)
    if multi:
        rule += (f" Thresholds ({clf['threshold_rule']}): "
                 + ", ".join(f"{c} {t:.3f}" for c, t in zip(classes, thresholds, strict=True)) + ".")
    return rule


def _calibration(clf: dict[str, Any]) -> str:
    cal = clf["calibration"]
    if "shrink" not in cal and "refused" not in cal:  # a bundle written before the confidence cap
        return f"Calibrated by {cal['method']} scaling fitted on the validation patients."
    return calibration_sentence(clf["classes"], cal)


def _small_validation(val: dict[str, Any]) -> list[str]:
    note = val.get("small_validation")
    if not note:
        return []
    return [f"**Warning: {note['message']}** Evaluate it on more patients (`medflip evaluate`) before trusting "
            "any figure below.", ""]


def _exposure_check(val: dict[str, Any]) -> list[str]:
    """The shortcut check (finetune.exposure_check): a table and its sentence; nothing for older bundles."""
    check = val.get("exposure_check")
    if not check:
        return []
    lines = ["", "## Exposure check",
             f"A logistic regression on film exposure alone ({check['features']}), fitted on the same training "
             "patients, scored on the same validation patients (95 % CI by the patient bootstrap):", "",
             "| class | exposure alone: ROC AUC | the classifier: ROC AUC |", "|---|---|---|"]
    for name, v in check["per_class"].items():
        model = v.get("classifier_roc_auc")
        lines.append(f"| {name} | {v['roc_auc']:.3f} ({v['ci95'][0]:.3f}-{v['ci95'][1]:.3f}) | "
                     + (f"{model:.3f} |" if model is not None else "- |"))
    lines += ["", ("**" + check["message"] + "**") if check.get("flagged") else check["message"]]
    return lines


def model_card(manifest: dict[str, Any]) -> str:
    """MODEL_CARD.md, generated from the manifest only (so the two cannot disagree)."""
    clf, prov, val = manifest["classifier"], manifest["provenance"], manifest["validation"]
    data = prov["data"]
    lines = [
        f"# {manifest['name']}: classifier ({'multi-label' if clf['multi_label'] else 'multi-class'})", "",
        f"**{manifest['intended_use']}**", "",
        "## What it does",
        f"Classes: {', '.join(clf['classes'])}. Probabilities: {clf['activation']} of a linear head on the "
        + ("frozen image embedding of the base model" if clf.get("mode", "probe") == "probe"
           else f"image embedding of the base model's tower fine-tuned ({clf['mode']}) from") +
        f" `{manifest['base_model']['name']}`. " + _calibration(clf),
        _decision_rule(clf),
        f"Head: {clf['head_fit']}.", "",
        "## Data",
        f"Source: `{data['source']}` ({data['kind']}); {data['images_used']} images of {data['patients']} patients "
        f"used, {data['images_skipped']} unreadable images skipped. Data sha256 (content hashes and labels of the "
        f"images used): `{data['sha256']}`.",
        f"Split: patient-disjoint, {data['train_images']} training images ({data['train_patients']} patients), "
        f"{data['val_images']} validation images ({data['val_patients']} patients); validation side: "
        + data.get("split", f"validation fraction {prov['config']['val_fraction']}, seed {prov['config']['seed']}")
        + ".",
        *([f"Labels: {prov['labelling']['sentence']}"] if prov.get("labelling") else []), "",
        "## Validation figures",
        *_small_validation(val),
        f"Measured on the {val['images']} validation images ({val['patients']} patients) of the data above. "
        f"CIs: {val['ci']}. The thresholds and the calibration were chosen on these same patients, so sensitivity "
        "and specificity here are optimistic; evaluate on other patients before relying on them.", "",
        "| class | images (patients) | ROC AUC | sensitivity | specificity | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in val["per_class"].items():
        lines.append(f"| {name} | {v['images']} ({v['patients']}) | {_fmt(v['roc_auc'])} | {_fmt(v['sensitivity'])} "
                     f"| {_fmt(v['specificity'])} | {v['ece']:.3f} |")
    lines += ["", f"Calibration error ({val['ece_kind']}): {val['ece']:.3f} for the probabilities this bundle gives, "
              f"{val['ece_uncalibrated']:.3f} for the head's raw ones"
              + (" (the confidence cap costs some calibration error on these patients; it is what keeps the "
                 "probabilities off 0 % and 100 % that so few patients cannot back)." if val.get("small_validation")
                 else "."), *_exposure_check(val), "",
              "## Base model and reproduction",
              f"Base model `{manifest['base_model']['name']}` (image encoder sha256 "
              f"`{manifest['base_model']['image_encoder_sha256']}`)"
              + ("; its text encoder, tokenizer and sentence bank are included, so zero-shot scoring and retrieval "
                 "work from this bundle as from the base model." if clf.get("zero_shot")
                 else "; no text encoder: this bundle scores its own classes only."),
              f"Command: `{prov['command']}`. Made {prov['created']} in {prov['seconds']:.1f} s on "
              f"{prov['machine']}.", "",
              "## Limits",
              "Research use only. Labels mined from reports are noisy; the figures hold for the data set named "
              "above and say nothing about other hospitals, scanners or populations.",
              _ood_sentence(clf), ""]
    return "\n".join(lines)


def _ood_sentence(clf: dict[str, Any]) -> str:
    """What the out-of-distribution check can see with this bundle (bundles written before it: no sentence)."""
    if "ood_reference" not in clf:
        return ""
    if clf["ood_reference"]:
        return ("Images that are not chest films still get scores here; the app warns from the DICOM tags, the pixels "
                "and the image embedding (the base model's chest-film reference, valid for this unchanged encoder).")
    return ("Images that are not chest films still get scores here; the app warns from the DICOM tags and the pixels "
            "only: the base model's chest-film reference of the embedding check does not describe this bundle's "
            "encoder" + (" (fine-tuned)." if clf.get("mode", "probe") != "probe" else " (the base model had none)."))


def _remove_stale_partials(out: Path) -> None:
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_classifier_bundle(out: str | Path, base: Bundle, classifier: Classifier, manifest_fields: dict[str, Any],
                            validation: dict[str, Any], overwrite: bool = False, keep_text: bool = True,
                            image_encoder: Path | None = None) -> Path:
    """Write the bundle atomically; `manifest_fields` holds name, provenance, validation summary and the like.

    `image_encoder`: an ONNX image tower to ship instead of the base model's (a fine-tuned tower, exported with
    the base model's input/output names and preprocessing); its text side then no longer matches the image
    embeddings, so pass keep_text=False with it."""
    if image_encoder is not None and keep_text:
        raise MedflipError("a fine-tuned image tower no longer shares the base model's text embedding space")
    out = Path(out)
    if out.exists() and not overwrite:
        raise MedflipError(f"{out} exists; choose another name for the model (or overwrite it explicitly).")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        for name in _base_files(base, keep_text):
            (partial / name).parent.mkdir(parents=True, exist_ok=True)
            source = image_encoder if (name == IMAGE_ONNX and image_encoder is not None) else base.file(name)
            shutil.copy2(source, partial / name)
        # the chest-film reference of the out-of-distribution check describes the base model's image encoder:
        # it holds for a probe (the same encoder), not for a fine-tuned tower (pixel checks only there)
        carries_reference = image_encoder is None and base.has(OOD_REFERENCE_NPZ)
        if carries_reference:
            shutil.copy2(base.file(OOD_REFERENCE_NPZ), partial / OOD_REFERENCE_NPZ)
        classifier.save_head(partial / HEAD_NPZ)
        (partial / VALIDATION_JSON).write_text(json.dumps(validation, indent=1, default=str), encoding="utf-8")
        manifest = {field: base.manifest[field] for field in _BASE_FIELDS if field in base.manifest}
        if not keep_text:
            manifest.pop("sentence_bank", None)
        manifest.update({"kind": KIND_CLASSIFIER, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         **manifest_fields})
        manifest["classifier"] = {**classifier.manifest_entry(), **manifest.get("classifier", {}),
                                  "zero_shot": (partial / TEXT_ONNX).is_file(),  # text side kept: zero-shot works
                                  "ood_reference": carries_reference}
        manifest.setdefault("name", out.name)
        card_manifest = {"intended_use": INTENDED_USE, **manifest}
        (partial / MODEL_CARD).write_text(model_card(card_manifest), encoding="utf-8")
        manifest["files"] = file_entries(partial, bundle_files(partial))
        write_manifest(partial, manifest)
        for file in partial.rglob("*"):
            if file.is_file():
                with open(file, "rb") as fh:
                    os.fsync(fh.fileno())
        _move_into_place(partial, out)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return out


def _move_into_place(partial: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(partial, out)
    fsync_dir(out.parent)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
