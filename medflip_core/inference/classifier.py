"""The classifier a bundle carries, applied with numpy: linear head -> calibrated probabilities -> decisions at the
stored thresholds, and a class-activation map from the patch tokens through the same head.

Why numpy and not an ONNX graph for the head: the head is one (K x D) product, a softmax or sigmoid and a
calibration step; numpy applies it exactly, it stays readable in the bundle (head.npz, the calibration and the
thresholds in the manifest), and the class-activation map needs the same weights anyway. The image tower stays
the base model's ONNX file, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medflip_core.errors import MedflipError

HEAD_NPZ = "head.npz"


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def calibrated_probabilities(logits: np.ndarray, multi_label: bool, calibration: dict[str, Any]) -> np.ndarray:
    """Temperature-scaled softmax (multi-class) or per-label Platt sigmoid (multi-label); method "none" = raw.
    Then the confidence cap when the calibration has one (`shrink`, finetune.calibration.prior_shrinkage):
    p' = (1 - w) p + w prior, so that a small validation set never yields 0 % or 100 %."""
    method = calibration.get("method", "none")
    if multi_label:
        if method == "platt":
            p = sigmoid(logits * np.asarray(calibration["scale"]) + np.asarray(calibration["offset"]))
        else:
            p = sigmoid(logits)
    elif method == "temperature":
        p = softmax(logits / float(calibration["temperature"]))
    else:
        p = softmax(logits)
    shrink = calibration.get("shrink")
    if shrink:
        w = np.asarray(shrink["weight"], dtype=np.float64)
        p = (1.0 - w) * p + w * np.asarray(shrink["prior"], dtype=np.float64)
    return p


@dataclass(frozen=True)
class Classifier:
    classes: list[str]
    multi_label: bool
    weight: np.ndarray  # (K, D): logits = embedding @ weight.T + bias
    bias: np.ndarray  # (K,)
    calibration: dict[str, Any]
    thresholds: np.ndarray  # (K,) decision thresholds on the calibrated probabilities

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return np.atleast_2d(embeddings).astype(np.float64) @ self.weight.T + self.bias

    def probabilities(self, embeddings: np.ndarray, calibrated: bool = True) -> np.ndarray:
        cal = self.calibration if calibrated else {"method": "none"}
        return calibrated_probabilities(self.logits(embeddings), self.multi_label, cal)

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, K) bool: probability at or above the class's threshold."""
        return np.atleast_2d(probabilities) >= self.thresholds

    def activation_map(self, patch_tokens: np.ndarray, class_index: int, grid: tuple[int, int]) -> np.ndarray:
        """(rows, cols) how much each patch token pushes the class's logit, through the head's weights.

        Multi-class: the class's weights minus the mean of all classes' (what moves the softmax towards it);
        multi-label: the label's own weights. Tokens are L2-normalised like the embedding the head was fitted on.
        """
        tokens = np.asarray(patch_tokens, dtype=np.float64)
        tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=-1, keepdims=True), 1e-12)
        w = self.weight[class_index] - (0.0 if self.multi_label else self.weight.mean(axis=0))
        rows, cols = grid
        values = np.full(rows * cols, np.nan)
        values[: tokens.shape[0]] = tokens @ w
        return values.reshape(rows, cols).astype(np.float32)

    def manifest_entry(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "multi_label": self.multi_label, "head": HEAD_NPZ,
                "activation": "sigmoid" if self.multi_label else "softmax", "calibration": self.calibration,
                "thresholds": {c: float(t) for c, t in zip(self.classes, self.thresholds, strict=True)}}

    def save_head(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, weight=self.weight.astype(np.float64), bias=self.bias.astype(np.float64))


def load_classifier(bundle_dir: str | Path, entry: dict[str, Any]) -> Classifier:
    """The classifier of a bundle from its manifest entry and head.npz."""
    try:
        classes = list(entry["classes"])
        with np.load(Path(bundle_dir) / entry.get("head", HEAD_NPZ), allow_pickle=False) as data:
            weight, bias = data["weight"], data["bias"]
        thresholds = np.array([float(entry["thresholds"][c]) for c in classes])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise MedflipError(f"the classifier head of {Path(bundle_dir).name} cannot be read: {exc}") from exc
    if weight.shape[0] != len(classes) or bias.shape != (len(classes),):
        raise MedflipError(f"the classifier head of {Path(bundle_dir).name} does not match its {len(classes)} classes.")
    return Classifier(classes=classes, multi_label=bool(entry["multi_label"]), weight=weight, bias=bias,
                      calibration=dict(entry.get("calibration", {"method": "none"})), thresholds=thresholds)
