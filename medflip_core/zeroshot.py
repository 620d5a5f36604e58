"""Zero-shot scoring from embeddings (numpy only): class embeddings, probabilities, similarity maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medflip_core.labels import CHEXPERT_LABELS, normalise_label_name
from medflip_core.prompts import PromptPlan


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def class_embeddings(plan: PromptPlan, text_embeddings: np.ndarray, negatives: bool = False) -> np.ndarray:
    """(C, D): mean of each label's normalised prompt embeddings, renormalised (prompt ensembling)."""
    t = l2_normalise(text_embeddings)
    groups = plan.negatives if negatives else plan.positives
    if groups is None:
        raise ValueError("this prompt plan has no negative prompts (use mode='pairs')")
    return l2_normalise(np.stack([t[idx].mean(axis=0) for idx in groups]))


def zero_shot_scores(image_emb: np.ndarray, class_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """(N, C) probabilities: softmax over classes of scale * cosine (one label per image)."""
    img = l2_normalise(np.atleast_2d(image_emb))
    return _softmax(logit_scale * img @ l2_normalise(class_emb).T, axis=1)


def pair_scores(image_emb: np.ndarray, pos_emb: np.ndarray, neg_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """(N, C) P(label present): for each class a softmax over its positive and negative prompt (multi-label)."""
    img = l2_normalise(np.atleast_2d(image_emb))
    pos = logit_scale * img @ l2_normalise(pos_emb).T
    neg = logit_scale * img @ l2_normalise(neg_emb).T
    return _softmax(np.stack([pos, neg], axis=-1), axis=-1)[..., 0]


def patch_similarity_map(
    patch_tokens: np.ndarray, text_emb: np.ndarray, grid: tuple[int, int], keep: np.ndarray | None = None
) -> np.ndarray:
    """(rows, cols) cosine between each patch token and a text embedding; masked-out patches are NaN."""
    rows, cols = grid
    sims = l2_normalise(patch_tokens) @ l2_normalise(text_emb).reshape(-1)
    out = np.full(rows * cols, np.nan, dtype=np.float32)
    if keep is None:
        out[: sims.shape[0]] = sims
    else:
        out[np.asarray(keep)] = sims
    return out.reshape(rows, cols)


# --- decision rules: how similarities become probabilities (chosen on validation data, shipped in the bundle) ---

EXCLUSIVE = "exclusive"  # one class per image: probabilities sum to 1 across the labels
INDEPENDENT = "independent"  # findings that co-occur: one probability per label (present vs absent)


@dataclass(frozen=True)
class DecisionRule:
    """Zero-shot logits -> probabilities.

    mode "softmax": logit_c = scale * cos(image, class prompts); "pairs": logit_c = scale * (cos(image, positive
    prompts) - cos(image, "no {label}")), CheXzero-style. `bias` (by label-space name, lower case) is added to a
    label's logit (a prompt bias: it moves the decision threshold), `temperature` divides the logits (calibration).
    Exclusive classes: softmax over labels; independent findings: sigmoid of each label's pair logit.
    """

    mode: str = "softmax"
    bias: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0
    chosen_on: str = "default (not chosen on data)"

    def __post_init__(self) -> None:
        if self.mode not in ("softmax", "pairs"):
            raise ValueError(f"decision rule mode must be softmax or pairs, not {self.mode!r}")
        if not self.temperature > 0:
            raise ValueError("decision rule temperature must be positive")

    def bias_of(self, labels: Sequence[str]) -> np.ndarray:
        return np.array([self.bias.get(normalise_label_name(lb).lower(), 0.0) for lb in labels], dtype=np.float64)

    def as_dict(self) -> dict:
        return {"mode": self.mode, "bias": dict(self.bias), "temperature": self.temperature,
                "chosen_on": self.chosen_on}

    @classmethod
    def from_dict(cls, data: dict | None) -> DecisionRule:
        if not data:
            return cls()
        return cls(mode=str(data.get("mode", "softmax")), bias={str(k).lower(): float(v) for k, v in
                                                                 (data.get("bias") or {}).items()},
                   temperature=float(data.get("temperature", 1.0)), chosen_on=str(data.get("chosen_on", "")))


MANIFEST_KEY = "zero_shot_rule"  # where a bundle manifest stores its DecisionRule


def rule_from_manifest(manifest: dict) -> DecisionRule:
    """The bundle's decision rule; bundles without one use plain softmax over classes (what they always did)."""
    return DecisionRule.from_dict(manifest.get(MANIFEST_KEY))


def label_kind(labels: Sequence[str]) -> str:
    """INDEPENDENT when two or more labels are findings of the label space (they can co-occur), else EXCLUSIVE
    (e.g. No Finding vs Pneumonia, or a user's own class names)."""
    findings = [lb for lb in labels if normalise_label_name(lb) in CHEXPERT_LABELS
                and normalise_label_name(lb) != "No Finding"]
    return INDEPENDENT if len(findings) >= 2 else EXCLUSIVE


def rule_logits(image_emb: np.ndarray, pos_emb: np.ndarray, neg_emb: np.ndarray | None, labels: Sequence[str],
                rule: DecisionRule, logit_scale: float) -> np.ndarray:
    """(N, C) logits of the rule, bias added, temperature applied."""
    img = l2_normalise(np.atleast_2d(image_emb)).astype(np.float64)
    logits = logit_scale * img @ l2_normalise(pos_emb).T.astype(np.float64)
    if rule.mode == "pairs":
        if neg_emb is None:
            raise ValueError("the pairs rule needs the negative prompt embeddings")
        logits = logits - logit_scale * img @ l2_normalise(neg_emb).T.astype(np.float64)
    return (logits + rule.bias_of(labels)) / rule.temperature


def rule_probabilities(image_emb: np.ndarray, pos_emb: np.ndarray, neg_emb: np.ndarray | None,
                       labels: Sequence[str], rule: DecisionRule, logit_scale: float, kind: str = EXCLUSIVE
                       ) -> np.ndarray:
    """(N, C) probabilities: softmax over labels (EXCLUSIVE) or one sigmoid per label (INDEPENDENT; the pair
    logit is used whatever the rule's mode, since "present vs absent" needs the negative prompt)."""
    if kind == INDEPENDENT:
        pair_rule = DecisionRule("pairs", rule.bias, rule.temperature, rule.chosen_on)
        z = rule_logits(image_emb, pos_emb, neg_emb, labels, pair_rule, logit_scale)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    return _softmax(rule_logits(image_emb, pos_emb, neg_emb, labels, rule, logit_scale), axis=1).astype(np.float32)


def negative_texts(labels: Sequence[str], template: str = "no {label}.") -> list[str]:
    return [template.replace("{label}", lb.strip().lower()) for lb in labels]


@dataclass(frozen=True)
class ZeroShotScores:
    """Probabilities and what they mean, so a screen can say it: EXCLUSIVE ones sum to 1 across the labels,
    INDEPENDENT ones are each P(label present)."""

    labels: list[str]
    probs: np.ndarray  # (N, C)
    kind: str
    rule: DecisionRule

    def explanation(self) -> str:
        if self.kind == INDEPENDENT:
            return "each finding scored on its own (present vs absent); the bars do not sum to 100 %"
        return "one class per image: probabilities sum to 100 % across the labels"


def score_labels(engine, image_emb: np.ndarray, labels: Sequence[str], kind: str | None = None,
                 rule: DecisionRule | None = None) -> ZeroShotScores:
    """Zero-shot probabilities of images over labels with the bundle's decision rule (`engine`: anything with
    class_embeddings, embed_texts, logit_scale and bundle.manifest, e.g. medflip_core.engine.Engine).

    `kind` None chooses by the labels (label_kind): findings of the label space are scored independently.
    """
    from medflip_core.prompts import load_prompt_set

    labels = list(labels)
    kind = kind or label_kind(labels)
    if kind not in (EXCLUSIVE, INDEPENDENT):
        raise ValueError(f"kind must be {EXCLUSIVE} or {INDEPENDENT}, not {kind!r}")
    rule = rule or rule_from_manifest(engine.bundle.manifest)
    pos = engine.class_embeddings(labels)
    neg = None
    if rule.mode == "pairs" or kind == INDEPENDENT:
        neg = engine.embed_texts(negative_texts(labels, load_prompt_set().negative_template))
    probs = rule_probabilities(image_emb, pos, neg, labels, rule, engine.logit_scale, kind)
    return ZeroShotScores(labels, probs, kind, rule)


@dataclass(frozen=True)
class ValidationSource:
    """One validation data set for choosing a rule: image embeddings, true class index, its name."""

    name: str
    image_emb: np.ndarray
    truth: np.ndarray


def choose_decision_rule(
    sources: Sequence[ValidationSource], pos_emb: np.ndarray, neg_emb: np.ndarray, labels: Sequence[str],
    logit_scale: float, bias_label: str, biases: Sequence[float] = tuple(np.round(np.arange(-8, 8.01, 0.25), 2)),
) -> tuple[DecisionRule, list[dict]]:
    """Pick mode (softmax vs pairs) and a prompt bias on `bias_label` on VALIDATION data of every source, then a
    temperature. Criterion: the worst source's gap between its accuracy and its best-threshold accuracy (a rule
    that is right for one hospital and wrong for another loses), then the mean accuracy. Temperature: the value
    that minimises the pooled negative log-likelihood (it does not change any decision).
    Returns the rule and the table of every candidate (for the record)."""
    from medflip_core.metrics import best_threshold_accuracy

    labels = list(labels)
    if len(labels) != 2:
        raise ValueError("choose_decision_rule handles two exclusive classes (e.g. No Finding vs Pneumonia)")
    target = labels.index(bias_label)
    table = []
    best_key, best = None, None
    for mode in ("softmax", "pairs"):
        base = [rule_logits(s.image_emb, pos_emb, neg_emb, labels, DecisionRule(mode), logit_scale)
                for s in sources]
        ceilings = [best_threshold_accuracy(s.truth == target, z[:, target] - z[:, 1 - target])[0]
                    for s, z in zip(sources, base, strict=True)]
        for b in biases:
            accs = []
            for s, z in zip(sources, base, strict=True):
                margin = z[:, target] - z[:, 1 - target] + b
                accs.append(float(np.mean((margin > 0) == (s.truth == target))))
            worst_gap = max(c - a for c, a in zip(ceilings, accs, strict=True))
            row = {"mode": mode, "bias": float(b), "worst_gap": worst_gap, "mean_accuracy": float(np.mean(accs)),
                   **{f"accuracy[{s.name}]": a for s, a in zip(sources, accs, strict=True)}}
            table.append(row)
            key = (round(worst_gap, 6), -row["mean_accuracy"], abs(b))
            if best_key is None or key < best_key:
                best_key, best = key, row
    assert best is not None
    rule = DecisionRule(best["mode"], {normalise_label_name(bias_label).lower(): best["bias"]})
    logits = np.concatenate([rule_logits(s.image_emb, pos_emb, neg_emb, labels, rule, logit_scale)
                             for s in sources])
    truth = np.concatenate([s.truth for s in sources])
    temperature = _fit_temperature(logits, truth)
    chosen_on = "validation patients of " + ", ".join(s.name for s in sources)
    return DecisionRule(rule.mode, rule.bias, temperature, chosen_on), table


def _fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of the true class (grid, log-spaced)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    nll = []
    for t in grid:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll.append(-logp[np.arange(len(truth)), truth].mean())
    return float(grid[int(np.argmin(nll))])
