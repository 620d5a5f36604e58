"""Zero-shot scoring from embeddings (numpy only): class embeddings, probabilities, similarity maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import CHEXPERT_LABELS, normalise_label_name
from medflip_core.labeler.prompts import PromptPlan


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


NOT_CHOSEN = "default (not chosen on data)"  # a rule nobody fitted: bias 0, temperature 1


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
    chosen_on: str = NOT_CHOSEN

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


AUTOMATIC = "automatic"  # the mode chosen from what the labels are (choose_label_mode)
MODE_NAMES = {INDEPENDENT: "findings, each present vs absent", EXCLUSIVE: "one class per image"}


@dataclass(frozen=True)
class LabelMode:
    """How a label list is scored: `kind` EXCLUSIVE or INDEPENDENT, whether it was chosen automatically, and why
    (a sentence a screen can show)."""

    kind: str
    automatic: bool
    reason: str

    @property
    def name(self) -> str:
        return MODE_NAMES[self.kind]


class LabelModeError(MedflipError):
    """A mode these labels cannot be scored in; `short` is a shorter form, for a hint beside the choice."""

    def __init__(self, message: str, short: str) -> None:
        super().__init__(message)
        self.short = short


def _is_finding(label: str) -> bool:
    canonical = normalise_label_name(label)
    return canonical in CHEXPERT_LABELS and canonical != "No Finding"


def outside_label_space(labels: Sequence[str]) -> list[str]:
    """The labels that are not one of the model's labels (CheXpert's observations and No Finding, by name or
    synonym). Their scores were never calibrated: the decision rule's bias and temperature were fitted on the
    model's own labels, and nothing was measured for a free text ("COVID-19", "banana")."""
    return [lb for lb in labels if lb.strip() and normalise_label_name(lb) not in CHEXPERT_LABELS]


UNCALIBRATED_TIP = ("not one of the model's labels: it was never trained or measured, and its decision rule was not "
                    "fitted on it; the score comes from the words alone, so it is a score to compare between images, "
                    "not a probability")


def uncalibrated_warning(labels: Sequence[str], kind: str | None = None) -> str:
    """One sentence for the screen and the command line, or "" when every label is the model's own. `kind`
    EXCLUSIVE: the labels share 100 %, so such a label also moves the others' shares, and the sentence says so."""
    outside = outside_label_space(labels)
    if not outside:
        return ""
    shown = ", ".join(f"“{lb}”" for lb in outside[:4]) + (" …" if len(outside) > 4 else "")
    if len(outside) == 1:
        text = (f"{shown} is not one of the model's labels: nothing trained or measured its score, which is not "
                "a probability.")
    else:
        text = (f"{shown} are not among the model's labels: nothing trained or measured their scores, which are "
                "not probabilities.")
    if kind == EXCLUSIVE:
        text += " The labels share 100 %, so this also shifts the other labels' shares."
    return text


def choose_label_mode(labels: Sequence[str], requested: str | None = AUTOMATIC) -> LabelMode:
    """The scoring mode for these labels: the user's explicit choice, or the automatic one.

    Why the automatic choice is what it is (what a careful reader of the numbers expects):
    - two or more findings of the model's label space (CheXpert's observations) can be present on one film
      (effusion with cardiomegaly, pneumonia with lung opacity); a softmax over them would make each finding's
      probability fall as more findings are typed (issue 23: "pneumothorax" 100 % alone, 41.7 % among four), so
      they are scored INDEPENDENTLY, each against its negative prompt ("no pneumothorax"), whatever is listed;
    - one label has nothing to share a softmax with (it would be 100 % by construction): it is scored against
      its negative prompt too;
    - otherwise (No Finding against one finding, or the user's own free-text classes such as "PA view" vs
      "lateral view") the labels are read as alternatives, one per image: a softmax over them (EXCLUSIVE).
    An explicit EXCLUSIVE choice with a single label is refused with a sentence (LabelModeError), never 100 %.
    """
    labels = [lb.strip() for lb in labels if lb.strip()]
    requested = requested or AUTOMATIC
    if requested not in (AUTOMATIC, EXCLUSIVE, INDEPENDENT):
        raise ValueError(f"label mode must be {AUTOMATIC}, {EXCLUSIVE} or {INDEPENDENT}, not {requested!r}")
    if requested == EXCLUSIVE:
        if len(labels) == 1:
            negative = negative_texts(labels)[0].rstrip(".")  # "no no finding" for No Finding (a GUI walk)
            against = "its negative prompt" if negative.startswith("no no ") else f"“{negative}”"
            raise LabelModeError(
                f"“{MODE_NAMES[EXCLUSIVE].capitalize()}” needs at least two labels: “{labels[0]}” alone would be "
                f"100 % by construction. Add the other classes, or choose “{MODE_NAMES[INDEPENDENT]}” to score it "
                f"against {against}.",
                "Needs two labels or more (one alone would be 100 % by construction).")
        return LabelMode(EXCLUSIVE, False, "chosen by you: the probabilities sum to 100 % across the labels")
    if requested == INDEPENDENT:
        return LabelMode(INDEPENDENT, False, "chosen by you: each label against its negative prompt")
    findings = [lb for lb in labels if _is_finding(lb)]
    if len(labels) == 1:
        negative = negative_texts(labels)[0].rstrip(".")
        return LabelMode(INDEPENDENT, True, f"one label: scored against its negative prompt (“{negative}”)")
    if len(findings) >= 2:
        rest = [lb for lb in labels if lb not in findings]
        also = ""
        if rest:  # No Finding, or a label outside the label space: scored the same way, and said so
            shown = ", ".join(f"“{lb}”" for lb in rest[:3]) + (" …" if len(rest) > 3 else "")
            also = (f"; {shown} is scored the same way, on its own" if len(rest) == 1 else
                    f"; {shown} are scored the same way, each on its own")
        count = (f"{len(findings)} of the {len(labels)} labels are" if rest else
                 "both labels are" if len(labels) == 2 else f"all {len(labels)} labels are")
        return LabelMode(INDEPENDENT, True, f"{count} findings of the model's label space: they can be present "
                                            f"together{also}")
    others = [lb for lb in labels if normalise_label_name(lb) not in CHEXPERT_LABELS]
    if others:
        shown = ", ".join(f"“{lb}”" for lb in others[:3]) + (" …" if len(others) > 3 else "")
        return LabelMode(EXCLUSIVE, True, f"labels outside the model's label space ({shown}): classes, one per "
                                          "image")
    if len(labels) == 2 and len(findings) == 1:  # No Finding against one finding (the shipped rule's question)
        return LabelMode(EXCLUSIVE, True, f"No Finding against {findings[0]}: two alternatives, one per image")
    return LabelMode(EXCLUSIVE, True, "fewer than two findings of the model's label space: alternatives, one per "
                                      "image")


def label_kind(labels: Sequence[str]) -> str:
    """The automatic kind of these labels (see choose_label_mode): INDEPENDENT for two or more findings of the
    label space or a single label, else EXCLUSIVE."""
    return choose_label_mode(labels).kind


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
    """Probabilities and what they mean, so a screen and a CSV can say it: EXCLUSIVE ones sum to 1 across the
    labels, INDEPENDENT ones are each P(label present); `automatic` and `reason` say how the mode was chosen.

    "No Finding" among findings scored independently is the model's own answer to "is this study normal?"
    (its prompt against its negative), not a number derived from the findings typed beside it: derived, its
    meaning would shift with the list and need an independence the findings lack. Its answer and a finding's
    cannot both hold when they add up to more than 100 % (No Finding means none at all); `contradictions`
    names such pairs so the screen says so instead of showing two confident, incompatible bars."""

    labels: list[str]
    probs: np.ndarray  # (N, C)
    kind: str
    rule: DecisionRule
    automatic: bool = True
    reason: str = ""
    alike: dict[str, str] = field(default_factory=dict)  # label -> why its score is abnormality (label_specificity)
    own_templates: bool = False  # the user's prompt templates: the plain rule, and no abnormality check
    prompts: dict[str, list[str]] = field(default_factory=dict)  # label -> the texts averaged into it (when known)

    @property
    def mode_name(self) -> str:
        """The mode in the words the app shows: "findings, each present vs absent" or "one class per image"."""
        return MODE_NAMES[self.kind]

    def mode_text(self) -> str:
        """The mode and how it was chosen, e.g. "findings, each present vs absent (automatic: …)"."""
        how = "automatic" if self.automatic else "chosen by the user"
        reason = self.reason if self.automatic else ""
        return f"{self.mode_name} ({how}{': ' + reason if reason else ''}){self.no_normal_note()}"

    def no_normal_note(self) -> str:
        """One class per image over findings without "No Finding": a normal film is given a finding too (a GUI
        walk: every NIH No Finding film came out of a batch as Pneumonia or COVID-19, with nothing said)."""
        if self.kind != EXCLUSIVE or any(normalise_label_name(lb) == "No Finding" for lb in self.labels):
            return ""
        if not any(_is_finding(lb) for lb in self.labels):
            return ""  # the user's own classes ("PA view", "lateral view"): alternatives that cover every film
        return ("; no label stands for a normal film, so every image, normal ones included, is given one of these "
                "labels: add “No Finding”")

    def explanation(self) -> str:
        """What the bars mean, in one sentence for the screen: the mode (and who chose it) first."""
        how = "automatic" if self.automatic else "your choice"
        if self.kind == INDEPENDENT:
            text = f"{self.mode_name} ({how}): the bars do not sum to 100 %"
        else:
            text = f"{self.mode_name} ({how}): probabilities sum to 100 % across the labels"
        if self.own_templates:  # a GUI walk read the ∥ marks' absence as "these are finding scores"
            text += ("; your own prompt templates: no decision rule was fitted for them, so these scores are not "
                     "comparable with the model's own prompts' (they can differ by tens of points), and whether a "
                     "label's score only follows how abnormal the film looks is checked for the model's own prompts "
                     "only")
        elif self.rule.chosen_on and self.rule.chosen_on != NOT_CHOSEN:  # where the bias and temperature were
            # fitted: they need not hold elsewhere
            text += f"; the decision rule was fitted on {self.rule.chosen_on} (recheck on your own patients)"
        return text + self.no_normal_note()

    def contradictions(self, row: int = 0) -> list[str]:
        """Sentences for image `row` where No Finding and a finding, scored independently, cannot both hold."""
        if self.kind != INDEPENDENT:
            return []
        normal = [i for i, lb in enumerate(self.labels) if normalise_label_name(lb) == "No Finding"]
        if not normal:
            return []
        p = self.probs[row]
        clash = [i for i in range(len(self.labels)) if i not in normal and p[normal[0]] + p[i] > 1.0]
        if not clash:
            return []
        names = ", ".join(f"{self.labels[i]} {p[i] * 100:.1f} %" for i in sorted(clash, key=lambda i: -p[i]))
        pairs = "each pair sums" if len(clash) > 1 else "the two sum"
        return [f"{self.labels[normal[0]]} {p[normal[0]] * 100:.1f} % contradicts {names}: it means none of them, "
                f"yet {pairs} over 100 % — the model is unsure of this image."]


def score_labels(engine, image_emb: np.ndarray, labels: Sequence[str], kind: str | None = None,
                 rule: DecisionRule | None = None) -> ZeroShotScores:
    """Zero-shot probabilities of images over labels with the bundle's decision rule (`engine`: anything with
    class_embeddings, embed_texts, logit_scale and bundle.manifest, e.g. medflip_core.inference.engine.Engine).

    `kind` None or AUTOMATIC chooses by the labels (choose_label_mode); EXCLUSIVE with one label is refused.
    """
    from medflip_core.labeler.prompts import load_prompt_set

    labels = list(labels)
    mode = choose_label_mode(labels, kind)
    rule = rule or rule_from_manifest(engine.bundle.manifest)
    pos = engine.class_embeddings(labels)
    neg = None
    if rule.mode == "pairs" or mode.kind == INDEPENDENT:
        neg = engine.embed_texts(negative_texts(labels, load_prompt_set().negative_template))
    probs = rule_probabilities(image_emb, pos, neg, labels, rule, engine.logit_scale, mode.kind)
    return ZeroShotScores(labels, probs, mode.kind, rule, mode.automatic, mode.reason)


def user_templates(templates: Sequence[str] | None, manifest: dict) -> list[str] | None:
    """The templates when they are the user's own; None when there are none or they are the bundle's own prompts
    written as templates (labeler.prompts.model_prompts: what the Zero-shot tab's box shows), which mean the bundle's
    own prompts and decision rule."""
    from medflip_core.labeler.prompts import model_prompts, same_templates

    own = model_prompts(manifest)
    if not templates or (own.as_templates and same_templates(templates, own.templates)):
        return None
    return list(templates)


def score_with_templates(engine, image_emb: np.ndarray, labels: Sequence[str], templates: Sequence[str] | None = None,
                         kind: str | None = AUTOMATIC) -> ZeroShotScores:
    """What the app's Zero-shot tab shows (and a batch should write, for the same meaning): with no templates or
    the bundle's own written as templates (user_templates), its own prompts and decision rule; with the user's own
    templates, the plain rule (the bundle's bias and temperature were chosen for its own prompts). `kind` as in
    score_labels."""
    own = user_templates(templates, engine.bundle.manifest)
    if own is None:
        return score_labels(engine, np.atleast_2d(image_emb), labels, kind=kind)
    scores = score_labels(_Templated(engine, own), np.atleast_2d(image_emb), labels, kind=kind, rule=DecisionRule())
    return replace(scores, own_templates=True)


class _Templated:
    """An engine whose label embeddings come from the user's templates (for score_labels)."""

    def __init__(self, engine, templates: list[str]) -> None:
        self._engine, self._templates = engine, templates
        self.bundle, self.logit_scale = engine.bundle, engine.logit_scale

    def class_embeddings(self, labels: list[str]) -> np.ndarray:
        return self._engine.class_embeddings(labels, self._templates)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._engine.embed_texts(texts)
