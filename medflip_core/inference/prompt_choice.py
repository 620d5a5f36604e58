"""Choosing the default zero-shot prompts on validation data of several sources (never on a test set).

Candidates are parts of the shipped prompt set (resources/prompts/default_prompts.json): the generic
templates alone, the report-style class phrasings alone, each template with the phrasings, and all of them
(the ensemble the app uses). Each candidate is scored by the ranking it gives on every validation source
(ROC AUC of the positive class's cosine minus the other class's: no rule, no threshold), and the winner is
the one whose WORST source is best (then the mean): prompts that suit one hospital and fail another lose.
The decision rule (medflip_core.inference.rule_choice.choose_decision_rule) is chosen afterwards, for the
chosen prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from medflip_core.inference.zeroshot import class_embeddings, l2_normalise
from medflip_core.labeler.prompts import PromptPlan, PromptSet, build_prompts
from medflip_core.metrics import roc_auc_binary


@dataclass(frozen=True)
class PromptCandidate:
    name: str
    prompt_set: PromptSet
    mode: str  # build_prompts mode: "ensemble" (templates + phrasings) or "template" (templates only)

    def plan(self, labels: Sequence[str]) -> PromptPlan:
        return build_prompts(list(labels), mode=self.mode, prompt_set=self.prompt_set)

    def texts(self, labels: Sequence[str]) -> dict[str, list[str]]:
        plan = self.plan(labels)
        return {label: plan.texts_for(label) for label in plan.labels}


def candidates(base: PromptSet) -> list[PromptCandidate]:
    """Sub-sets of one prompt set; the first is the whole set as the app uses it."""
    out = [PromptCandidate("templates + phrasings (the shipped ensemble)", base, "ensemble"),
           PromptCandidate("templates only", base, "template"),
           PromptCandidate("phrasings only", PromptSet((), base.classes, base.negative_template), "ensemble")]
    for template in base.templates:
        out.append(PromptCandidate(f"'{template}' + phrasings", PromptSet((template,), base.classes,
                                                                           base.negative_template), "ensemble"))
    return out


def class_embedding_of(texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Mean of the L2-normalised text embeddings, renormalised: the engine's prompt ensembling
    (medflip_core.inference.zeroshot.class_embeddings) for one label."""
    plan = PromptPlan(labels=["label"], texts=list(texts), positives=[list(range(len(texts)))])
    return class_embeddings(plan, embed(list(texts)))[0]


def compare_prompt_sets(
    sources: Sequence, labels: Sequence[str], positive: str, embed: Callable[[list[str]], np.ndarray],
    options: Sequence[PromptCandidate],
) -> tuple[PromptCandidate, list[dict]]:
    """The chosen candidate and one row per candidate: AUC per source (`sources`: objects with name, image_emb
    and truth = class index into `labels`), worst and mean. Phrasing-only candidates need phrasings for every
    label; a candidate that leaves a label without text is skipped."""
    labels = list(labels)
    if len(labels) != 2:
        raise ValueError("compare_prompt_sets compares two exclusive classes (e.g. No Finding vs Pneumonia)")
    target = labels.index(positive)
    rows, best, best_key = [], None, None
    for option in options:
        plan = option.plan(labels)
        texts = {label: plan.texts_for(label) for label in labels}
        if any(not texts[label] for label in labels):
            continue
        classes = class_embeddings(plan, embed(plan.texts))
        aucs = {}
        for source in sources:
            cos = l2_normalise(source.image_emb) @ classes.T
            aucs[source.name] = roc_auc_binary(source.truth == target, cos[:, target] - cos[:, 1 - target])
        row = {"prompts": option.name, "worst_auc": min(aucs.values()), "mean_auc": float(np.mean(list(aucs.values()))),
               **{f"auc[{name}]": value for name, value in aucs.items()}, "texts": texts}
        rows.append(row)
        key = (round(row["worst_auc"], 6), round(row["mean_auc"], 6))
        if best_key is None or key > best_key:
            best, best_key = option, key
    if best is None:
        raise ValueError("no candidate prompt set has texts for every label")
    return best, rows


__all__ = ["PromptCandidate", "candidates", "class_embedding_of", "compare_prompt_sets"]
