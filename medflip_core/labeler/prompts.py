"""Prompt sets: which texts stand for a label, for zero-shot scoring.

Three modes: "template" (generic templates around the label text), "ensemble" (templates plus the
class's report-style phrasings, averaged), "pairs" (CheXzero-style "{label}" vs "no {label}").
Any label a user types works; labels of the label space also get their class phrasings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medflip_core.errors import MedflipError
from medflip_core.labeler.labels import CHEXPERT_LABELS, normalise_label_name
from medflip_core.resources import resources_dir


@dataclass(frozen=True)
class PromptSet:
    templates: tuple[str, ...]
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    negative_template: str = "no {label}."


@dataclass
class PromptPlan:
    """Unique texts to embed, and for each label the indices of its texts (and of its negatives in pairs mode)."""

    labels: list[str]
    texts: list[str]
    positives: list[list[int]]
    negatives: list[list[int]] | None = None
    mode: str = "ensemble"

    def texts_for(self, label: str) -> list[str]:
        return [self.texts[i] for i in self.positives[self.labels.index(label)]]


MANIFEST_PROMPTS = "zero_shot_prompts"  # a bundle's own prompt choice (inference.prompt_choice), in its manifest


@dataclass(frozen=True)
class ShippedPrompts:
    """The prompts a bundle's decision rule was chosen with: a prompt set and the build_prompts mode."""

    name: str
    prompt_set: PromptSet
    mode: str = "ensemble"

    def as_dict(self) -> dict:
        return {"name": self.name, "mode": self.mode, "templates": list(self.prompt_set.templates),
                "classes": {k: list(v) for k, v in self.prompt_set.classes.items()},
                "negative_template": self.prompt_set.negative_template}

    @classmethod
    def from_manifest(cls, manifest: dict) -> ShippedPrompts | None:
        raw = manifest.get(MANIFEST_PROMPTS)
        if not raw:
            return None
        try:
            return cls(str(raw["name"]), PromptSet(tuple(raw["templates"]),
                                                   {k: tuple(v) for k, v in raw.get("classes", {}).items()},
                                                   raw.get("negative_template", "no {label}.")),
                       raw.get("mode", "ensemble"))
        except (KeyError, TypeError) as exc:
            raise MedflipError(f"the bundle's {MANIFEST_PROMPTS} entry is malformed: {exc}") from exc

    def plan(self, labels: list[str]) -> PromptPlan | None:
        """The plan for these labels, or None when a label gets no text from this set (a label outside the
        label space with a phrasings-only set): the caller then uses the standard prompts."""
        plan = build_prompts(labels, mode=self.mode, prompt_set=self.prompt_set)
        return plan if all(plan.positives) else None


def load_prompt_set(path: str | Path | None = None) -> PromptSet:
    path = Path(path) if path else resources_dir() / "prompts" / "default_prompts.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return PromptSet(
            templates=tuple(raw["templates"]),
            classes={k: tuple(v) for k, v in raw.get("classes", {}).items()},
            negative_template=raw.get("negative_template", "no {label}."),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MedflipError(f"cannot read the prompt set {path}: {exc}") from exc


def _label_text(label: str) -> str:
    return label.strip().lower()


def label_prompts(label: str, prompts: PromptSet, mode: str, templates: list[str] | None = None) -> list[str]:
    """The texts that stand for one label."""
    text = _label_text(label)
    chosen = templates if templates else list(prompts.templates)
    out = [t.replace("{label}", text) for t in chosen]
    canonical = normalise_label_name(label)
    if mode == "ensemble" and canonical in CHEXPERT_LABELS:
        out.extend(prompts.classes.get(canonical, ()))
    if mode == "pairs":
        out = [f"{text}."]
    return list(dict.fromkeys(out))


def build_prompts(
    labels: list[str], templates: list[str] | None = None, *, mode: str = "ensemble",
    prompt_set: PromptSet | None = None,
) -> PromptPlan:
    if mode not in ("ensemble", "template", "pairs"):
        raise MedflipError(f"prompt mode must be ensemble, template or pairs, not {mode!r}")
    labels = [lb.strip() for lb in labels if lb.strip()]
    if not labels:
        raise MedflipError("type at least one label to score")
    if len(set(map(str.lower, labels))) != len(labels):
        seen: set[str] = set()
        twice = sorted({lb for lb in labels if lb.lower() in seen or seen.add(lb.lower())})
        raise MedflipError(f"the label list has duplicates: {', '.join(twice)}")
    prompts = prompt_set or load_prompt_set()
    texts: list[str] = []
    index: dict[str, int] = {}

    def add(t: str) -> int:
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
        return index[t]

    positives = [[add(t) for t in label_prompts(lb, prompts, mode, templates)] for lb in labels]
    negatives = None
    if mode == "pairs":
        negatives = [[add(prompts.negative_template.replace("{label}", _label_text(lb)))] for lb in labels]
    return PromptPlan(labels=labels, texts=texts, positives=positives, negatives=negatives, mode=mode)
