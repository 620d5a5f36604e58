"""Prompt sets: which texts stand for a label, for zero-shot scoring.

Three modes: "template" (generic templates around the label text), "ensemble" (templates plus the
class's report-style phrasings, averaged), "pairs" (CheXzero-style "{label}" vs "no {label}").
Any label a user types works; labels of the label space also get their class phrasings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


@dataclass(frozen=True)
class ModelPrompts:
    """The prompts that score a model's labels when the user types no templates of their own, as a template box
    shows them: `templates` when typing exactly those templates gives the same texts (`as_templates`), else a
    read-only `description` is all there is to show."""

    name: str
    templates: tuple[str, ...]
    as_templates: bool  # typed templates get each known finding's phrasings of the default set: the same texts
    description: str  # one clause, e.g. "the template “…” and each finding's report-style phrasings, averaged"


def _quoted(templates: tuple[str, ...]) -> str:
    return ", ".join(f"“{t}”" for t in templates)


def model_prompts(manifest: dict) -> ModelPrompts:
    """What a bundle's own prompts are (its manifest's zero_shot_prompts, else the default prompt set), and whether
    a template box can hold them: typed templates are used in "ensemble" mode with the default set's phrasings
    (build_prompts), so a set is expressible as templates when it has templates, that mode and those phrasings."""
    default = load_prompt_set()
    shipped = ShippedPrompts.from_manifest(manifest)
    if shipped is None:
        return ModelPrompts("the default prompt set", default.templates, True,
                            f"the templates {_quoted(default.templates)} and each of the model's findings' "
                            "report-style phrasings, averaged")
    templates, phrasings = shipped.prompt_set.templates, shipped.mode == "ensemble" and bool(shipped.prompt_set.classes)
    same = bool(templates) and shipped.mode == "ensemble" and shipped.prompt_set.classes == default.classes
    if same:
        what = (f"the template{'s' if len(templates) > 1 else ''} {_quoted(templates)} and each of the model's "
                "findings' report-style phrasings, averaged")
    elif not templates:
        what = ("each of the model's findings' report-style phrasings alone, no template; when a label has none (one "
                "outside the model's labels), every label is scored with the default prompt set instead")
    elif phrasings:
        what = (f"the templates {_quoted(templates)} with phrasings of the model's own for its findings, not the "
                "default set's that typed templates get")
    else:
        what = f"the templates {_quoted(templates)} alone, without the findings' report-style phrasings"
    return ModelPrompts(shipped.name, templates, same, what)


def _template_key(template: str) -> str:
    return " ".join(template.split()).rstrip(" .").casefold()


def same_templates(typed: Sequence[str], own: Sequence[str]) -> bool:
    """Typed templates are the model's own when they differ from them only in case, spacing and a final full stop
    (a GUI walk: deleting the full stop made them "your own", with the plain rule, and moved a score by 25 points)."""
    return [_template_key(t) for t in typed] == [_template_key(t) for t in own]


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
