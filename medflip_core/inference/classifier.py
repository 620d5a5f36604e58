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


NEGATIVE_NAMES = ("normal", "no finding", "no_finding", "negative", "healthy", "none")


def default_positive(classes: list[str]) -> int:
    """The class of a two-class classifier whose threshold is the operating point, when the bundle does not name
    it: the one that is not 'normal' / 'no finding' (else the second, as a sorted NORMAL / PNEUMONIA pair has)."""
    negative = [c.strip().lower().replace("-", " ") in NEGATIVE_NAMES for c in classes]
    if len(classes) == 2 and negative.count(True) == 1:
        return negative.index(False)
    return 1


def decide(probabilities: np.ndarray, thresholds: np.ndarray, multi_label: bool,
           positive: int | None) -> np.ndarray:
    """(N, K) bool decisions, THE rule every view and file uses (see `decision_rule_sentence`).

    Multi-label: each label at or above its own threshold. Exclusive classes: exactly one class per image, the
    most probable one, unless there is a single operating point (two classes: the positive class's threshold),
    which then decides: the positive class at or above it, the other class below it. Per-class thresholds of
    exclusive classes are never applied one by one (they can decide both classes, or neither)."""
    p = np.atleast_2d(probabilities)
    if multi_label:
        return p >= thresholds
    out = np.zeros(p.shape, dtype=bool)
    if positive is not None and p.shape[1] == 2:
        other = 1 - positive
        pos = p[:, positive] >= thresholds[positive]
        out[:, positive], out[:, other] = pos, ~pos
    else:
        out[np.arange(len(p)), p.argmax(axis=1)] = True
    return out


def decision_rule_sentence(classes: list[str], multi_label: bool, positive: int | None,
                           thresholds: np.ndarray | list[float], calibrated: bool = True) -> str:
    """The decision rule in one sentence (model card, CLI, app); 'calibrated' only when the probabilities are."""
    prob = "calibrated probability" if calibrated else "probability"
    if multi_label:
        return (f"Decision: each class on its own, present when its {prob} is at or above that "
                "class's threshold (chosen on validation patients).")
    if positive is not None and len(classes) == 2:
        pos, other = classes[positive], classes[1 - positive]
        return (f"Decision: one class per image, from a single operating point: {pos} when its {prob} "
                f"is at or above {float(thresholds[positive]):.3f} (chosen on validation patients, "
                f"Youden's J), otherwise {other}.")
    return "Decision: one class per image, the most probable one (no per-class thresholds)."


@dataclass(frozen=True)
class Classifier:
    classes: list[str]
    multi_label: bool
    weight: np.ndarray  # (K, D): logits = embedding @ weight.T + bias
    bias: np.ndarray  # (K,)
    calibration: dict[str, Any]
    thresholds: np.ndarray  # (K,) decision thresholds on the calibrated probabilities
    positive: int | None = None  # two exclusive classes: the class whose threshold is the one operating point

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return np.atleast_2d(embeddings).astype(np.float64) @ self.weight.T + self.bias

    def probabilities(self, embeddings: np.ndarray, calibrated: bool = True) -> np.ndarray:
        cal = self.calibration if calibrated else {"method": "none"}
        return calibrated_probabilities(self.logits(embeddings), self.multi_label, cal)

    @property
    def operating_point(self) -> int | None:
        """Two exclusive classes: the index of the class whose threshold decides; otherwise None."""
        if self.multi_label or len(self.classes) != 2:
            return None
        return default_positive(self.classes) if self.positive is None else self.positive

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, K) bool under the one decision rule (`decide`)."""
        return decide(probabilities, self.thresholds, self.multi_label, self.operating_point)

    def effective_thresholds(self) -> dict[str, float]:
        """The cut on each class's probability that its decision amounts to: every label's own (multi-label); the
        operating point and its mirror 1 - t (two exclusive classes); none (more: the top class decides)."""
        if self.multi_label:
            return {c: float(t) for c, t in zip(self.classes, self.thresholds, strict=True)}
        pos = self.operating_point
        if pos is None:
            return {}
        t = float(self.thresholds[pos])
        return {self.classes[pos]: t, self.classes[1 - pos]: 1.0 - t}

    @property
    def calibrated(self) -> bool:
        """Whether a calibration was fitted for every class (a small validation set refuses it: the model card says
        'Not calibrated', and so must every view that shows these probabilities)."""
        return self.calibration.get("method", "none") != "none" and not self.calibration.get("refused")

    def probability_words(self) -> str:
        """What these numbers are, in the words every view uses: 'calibrated probabilities' only when they are."""
        refused = self.calibration.get("refused") or []
        if self.calibrated:
            return "calibrated probabilities"
        if self.calibration.get("method", "none") != "none" and refused:
            return f"probabilities, calibrated except {', '.join(refused)} (too few validation patients)"
        why = " (too few validation patients to fit it)" if refused else ""
        return f"probabilities, NOT calibrated{why}"

    def rule_sentence(self) -> str:
        return decision_rule_sentence(self.classes, self.multi_label, self.operating_point, self.thresholds,
                                      self.calibrated)

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
                "thresholds": {c: float(t) for c, t in zip(self.classes, self.thresholds, strict=True)},
                **({"operating_point": self.classes[self.operating_point]} if self.operating_point is not None
                   else {})}

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
    point = entry.get("operating_point")
    return Classifier(classes=classes, multi_label=bool(entry["multi_label"]), weight=weight, bias=bias,
                      calibration=dict(entry.get("calibration", {"method": "none"})), thresholds=thresholds,
                      positive=classes.index(point) if point in classes else None)
