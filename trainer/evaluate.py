"""Validation during training: zero-shot classification of the held-out patients' images."""

from __future__ import annotations

import numpy as np
import torch

from medflip_core.imaging.preprocess import PreprocessConfig
from medflip_core.inference.zeroshot import class_embeddings, zero_shot_scores
from medflip_core.labeler.prompts import build_prompts
from medflip_core.metrics import accuracy, roc_auc_binary, roc_auc_ovr
from medflip_core.model.clip_model import MedFlipModel
from trainer.batches import ImageBatches
from trainer.image_cache import DecodedImageCache


def val_subset(n: int, cap: int | None, seed: int = 0) -> np.ndarray:
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


@torch.no_grad()
def embed_records(model: MedFlipModel, loader: ImageBatches, indices: np.ndarray, device, batch: int = 64):
    """Unmasked image embeddings of records (unreadable ones dropped); returns (embeddings, kept indices)."""
    model.eval()
    embs, kept = [], []
    for start in range(0, len(indices), batch):
        arrays, ids = [], []
        chunk = [int(i) for i in indices[start : start + batch]]
        for i, arr in zip(chunk, loader.load_many(chunk), strict=True):
            if arr is not None:
                arrays.append(arr)
                ids.append(i)
        if arrays:
            pixels = torch.from_numpy(np.stack(arrays)).to(device)
            embs.append(model.encode_image(pixels).embedding.float().cpu().numpy())
            kept.extend(ids)
    model.train()
    return (np.concatenate(embs) if embs else np.zeros((0, 1), np.float32)), np.array(kept, dtype=np.int64)


@torch.no_grad()
def embed_texts(model: MedFlipModel, texts: list[str], device) -> np.ndarray:
    model.eval()
    tokens = {k: v.to(device) for k, v in model.text_tower.tokenize(texts).items()}
    out = model.encode_text(tokens["input_ids"], tokens["attention_mask"]).embedding.float().cpu().numpy()
    model.train()
    return out


def zero_shot_eval(model: MedFlipModel, data, pre: PreprocessConfig, device, cap: int | None,
                   cache: DecodedImageCache | None = None, workers: int = 0, decode_in: str = "threads") -> dict:
    """Accuracy and ROC AUC (data set: the run's patient-disjoint validation split); `cache` keeps the decoded
    validation images from one evaluation to the next; `workers` and `decode_in` as the run's loader has them
    (worker processes start only if something is not in the cache)."""
    loader = ImageBatches(data.val, pre, batch_size=1, seed=0, cache=cache, cache_name="val", workers=workers,
                          decode_in=decode_in)
    try:
        image_emb, kept = embed_records(model, loader, val_subset(len(data.val), cap), device)
    finally:
        loader.close()
    if len(kept) == 0:
        return {"n_val": 0}
    plan = build_prompts(data.class_prompts, mode="ensemble")
    class_emb = class_embeddings(plan, embed_texts(model, plan.texts, device))
    # detached: a UserWarning otherwise
    probs = zero_shot_scores(image_emb, class_emb, float(model.logit_scale.detach().exp()))
    truth = np.array([data.class_names.index(data.val[i].class_name) for i in kept])
    metrics = {"n_val": len(kept), "val_accuracy": accuracy(truth, probs.argmax(axis=1))}
    if len(data.class_names) == 2:
        metrics["val_auc"] = roc_auc_binary(truth == 1, probs[:, 1])
    else:
        metrics["val_auc"] = roc_auc_ovr(truth, probs, data.class_names)["macro"]
    metrics["data_set"] = "validation split (patient-disjoint) of the training images"
    return metrics
