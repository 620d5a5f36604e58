"""Export a trained checkpoint to a model bundle: ONNX encoders (mask ratio 0), tokenizer, sentence bank,
safetensors weights, manifest with sha256 of every file and the training provenance. Needs torch.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from medflip_core import __version__
from medflip_core.bundles.bundle import (
    BANK_NPZ,
    IMAGE_ONNX,
    INTENDED_USE,
    MODEL_CARD,
    TEXT_ONNX,
    TOKENIZER_DIR,
    WEIGHTS,
    bundle_files,
    file_entries,
    load_bundle,
    sha256_file,
    write_manifest,
)
from medflip_core.bundles.checkpoint_layout import MODEL_FILE, STATE_FILE, is_checkpoint, latest_checkpoint
from medflip_core.bundles.model_card import clip_model_card
from medflip_core.errors import MedflipError
from medflip_core.imaging.preprocess import PreprocessConfig
from medflip_core.labeler.labels import CHEXPERT_LABELS
from medflip_core.model.clip_model import MedFlipModel, build_model
from medflip_core.model.config import ModelConfig

log = logging.getLogger(__name__)
OPSET = 17
DEFAULT_LABELS = ["No Finding", "Pneumonia", "Pleural Effusion", "Cardiomegaly", "Atelectasis", "Edema",
                  "Pneumothorax", "Lung Opacity"]


class ImageEncoderGraph(nn.Module):
    """pixels (B,1,S,S) -> embedding (B,D), patch tokens (B,L,D); no masking."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.tower(pixels)
        return out.embedding, out.tokens


class TextEncoderGraph(nn.Module):
    """input_ids, attention_mask (B,T) int64 -> embedding (B,D)."""

    def __init__(self, model: MedFlipModel) -> None:
        super().__init__()
        self.tower = model.text_tower

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.tower(input_ids, attention_mask).embedding


def load_trained_model(weights: str | Path, model_config: dict[str, Any]) -> MedFlipModel:
    model = build_model(ModelConfig.from_dict(model_config))
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model.eval()


def _export_onnx(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                 dynamic: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_image_tower(tower: nn.Module, cfg: ModelConfig, path: Path) -> None:
    """The image tower as ONNX with the engine's input/output names (bundles and fine-tuned classifiers alike)."""
    pixels = torch.zeros(2, cfg.in_chans, cfg.image_size, cfg.image_size)
    _export_onnx(ImageEncoderGraph(tower.eval()), (pixels,), path, ["pixels"], ["embedding", "patch_tokens"],
                 {"pixels": {0: "batch"}, "embedding": {0: "batch"}, "patch_tokens": {0: "batch"}})


def export_model(
    model: MedFlipModel,
    pre: PreprocessConfig,
    out_dir: str | Path,
    *,
    name: str | None = None,
    provenance: dict[str, Any] | None = None,
    sentence_bank: dict[str, Any] | None = None,
    default_labels: list[str] | None = None,
    extra_files: dict[str, Path] | None = None,
    half_weights: bool = False,
    quantize_text: bool = False,
) -> Path:
    """Write a complete bundle to out_dir (built in a side folder, then renamed into place)."""
    out_dir = Path(out_dir)
    work = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        model = model.eval().cpu()
        cfg = model.config
        export_image_tower(model.image_tower, cfg, work / IMAGE_ONNX)
        tokens = model.text_tower.tokenize(["no acute cardiopulmonary abnormality", "small left effusion"])
        _export_onnx(TextEncoderGraph(model), (tokens["input_ids"], tokens["attention_mask"]), work / TEXT_ONNX,
                     ["input_ids", "attention_mask"], ["embedding"],
                     {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                      "embedding": {0: "batch"}})
        if quantize_text:
            _quantize(work / TEXT_ONNX)
        model.text_tower.tokenizer.save_pretrained(str(work / TOKENIZER_DIR))
        if not (work / TOKENIZER_DIR / "tokenizer.json").is_file():
            raise MedflipError("the text tower's tokenizer has no fast (tokenizer.json) form; ONNX inference needs it")
        dtype = torch.float16 if half_weights else None
        weights = {k: (v.detach().cpu().to(dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu())
                   .contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(work / WEIGHTS))
        bank_info = None
        if sentence_bank is not None:
            bank_info = _write_bank(model, work, **sentence_bank)
        for rel, src in (extra_files or {}).items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
        manifest = {
            "name": name or out_dir.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "medflip_version": __version__,
            "label_space": list(CHEXPERT_LABELS),
            "default_labels": default_labels or DEFAULT_LABELS,
            "preprocess": pre.to_dict(),
            "model": {**cfg.to_dict(), "patch_size": model.image_tower.patch_size},
            "embedding_dim": cfg.embed_dim,
            "logit_scale": float(model.logit_scale.detach().exp()),
            "max_text_tokens": cfg.max_text_tokens,
            "onnx": {"opset": OPSET, "image_inputs": ["pixels"], "image_outputs": ["embedding", "patch_tokens"],
                     "text_inputs": ["input_ids", "attention_mask"], "text_outputs": ["embedding"]},
            "sentence_bank": bank_info,
            "weights_dtype": "float16" if half_weights else "float32",
            "text_encoder_quantized": quantize_text,
            "provenance": {
                **(provenance or {}),
                "exported_with": {"torch": torch.__version__, "python": platform.python_version(),
                                  "machine": platform.machine(), "system": platform.system()},
            },
        }
        (work / MODEL_CARD).write_text(clip_model_card({"intended_use": INTENDED_USE, **manifest}), encoding="utf-8")
        manifest["files"] = file_entries(work, bundle_files(work))
        write_manifest(work, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    load_bundle(out_dir, verify=True)
    return out_dir


def _quantize(path: Path) -> None:
    """int8 dynamic quantisation of the text encoder's matrix multiplications (about 4x smaller), one scale per
    output channel: per-tensor scales moved sentence-to-sentence similarities by up to 0.13 on the v3 model,
    per-channel by 0.03 (tests/medflip_core/model/test_shipped_text_encoder.py)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(path)


@torch.no_grad()
def _write_bank(model: MedFlipModel, work: Path, corpus: Path, indices: np.ndarray, labels: np.ndarray,
                corpus_ref: str) -> dict[str, Any]:
    """Embeddings of the corpus sentences at `indices`; the text itself stays in the corpus file."""
    from medflip_core.reports import load_sentence_corpus

    sentences = load_sentence_corpus(corpus)
    chosen = [sentences[int(i)] for i in indices]
    embs = []
    for start in range(0, len(chosen), 128):
        tok = model.text_tower.tokenize(chosen[start : start + 128])
        embs.append(model.encode_text(tok["input_ids"], tok["attention_mask"]).embedding.float().numpy())
    emb = np.concatenate(embs) if embs else np.zeros((0, model.config.embed_dim), np.float32)
    np.savez_compressed(work / BANK_NPZ, embeddings=emb.astype(np.float16), indices=indices.astype(np.int64),
                        labels=labels.astype(np.int8))
    return {"corpus": corpus_ref, "corpus_sha256": sha256_file(corpus), "n_corpus_sentences": len(sentences),
            "n": len(chosen)}


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, **kwargs: Any) -> Path:
    """A trainer checkpoint folder (model.safetensors + state.json) -> bundle."""
    checkpoint = Path(checkpoint)
    state_file = checkpoint / STATE_FILE
    if not state_file.is_file():
        raise MedflipError(f"{checkpoint} is not a trainer checkpoint (no {STATE_FILE})")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    model = load_trained_model(checkpoint / MODEL_FILE, state["model_config"])
    pre = PreprocessConfig.from_dict(state["preprocess"])
    provenance = {"checkpoint_step": state.get("step"), "training_config": state.get("config"),
                  "training_seconds": state.get("elapsed_s"), "validation_metrics": state.get("metrics"),
                  "n_train_images": state.get("n_train_images"), "n_val_images": state.get("n_val_images"),
                  **kwargs.pop("provenance", {})}
    return export_model(model, pre, out_dir, provenance=provenance, **kwargs)


SHIPPED_CORPUS = "corpora/NLMCXR_reports.tgz"  # relative to resources/: the original IU archive, unmodified


def bank_selection(corpus: Path, max_sentences: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into load_sentence_corpus(corpus)) and label vectors of the labelled sentences."""
    from medflip_core.data.labelled_sentences import sentence_label
    from medflip_core.reports import load_sentence_corpus

    sentences = load_sentence_corpus(corpus)
    labels = np.stack([sentence_label(s) for s in sentences])
    keep = np.flatnonzero((labels != 0).any(axis=1))
    if max_sentences is not None and len(keep) > max_sentences:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_sentences, replace=False))
    return keep, labels[keep]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder whose latest complete checkpoint is used."""
    path = Path(path)
    if is_checkpoint(path):
        return path
    ckpt = latest_checkpoint(path)
    if ckpt is None:
        raise MedflipError(f"{path} is neither a checkpoint nor a run folder with checkpoints")
    return ckpt.path


def export_checkpoint_cli(checkpoint: str | Path, out_dir: str | Path, *, name: str | None = None,
                          bank_corpus: str | Path | None = None, no_bank: bool = False, half_weights: bool = False,
                          quantize_text: bool = False) -> Path:
    """`medflip export`: a checkpoint or run folder -> bundle, the sentence bank from the shipped IU archive
    unless another corpus is given (or none)."""
    from medflip_core.resources import resources_dir

    checkpoint = resolve_checkpoint(checkpoint)
    bank = None
    if not no_bank:
        shipped = resources_dir() / SHIPPED_CORPUS
        corpus = Path(bank_corpus) if bank_corpus else shipped
        if not corpus.is_file():
            raise MedflipError(f"sentence bank corpus {corpus} not found (use --bank-corpus or --no-bank)")
        indices, labels = bank_selection(corpus)
        ref = SHIPPED_CORPUS if corpus.resolve() == shipped.resolve() else str(corpus.resolve())
        bank = {"corpus": corpus, "indices": indices, "labels": labels, "corpus_ref": ref}
    return export_checkpoint(checkpoint, out_dir, name=name, sentence_bank=bank,
                             half_weights=half_weights, quantize_text=quantize_text)
