"""Which zero-shot labels a model's own validation figures back, read from its manifest.

A GUI walk: Edema 73 % and Atelectasis 36 % looked exactly like Pneumonia's bar, while the model card says
Atelectasis's held-out ROC AUC is 0.556 (its CI includes chance) and Edema was never measured. Labels outside the
label space are zeroshot.outside_label_space's business; this names, for the model's own labels, those whose score
has no held-out figure that tells it from chance. The figures were measured with the model's own prompts and
decision rule; with typed templates they back the label less, which the Zero-shot tab says of typed templates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from medflip_core.labeler.labels import CHEXPERT_LABELS, normalise_label_name

UNVALIDATED_TIP = ("no held-out figure of this model tells this label's score from chance (never measured on "
                   "held-out patients, or measured with a confidence interval that reaches chance; the model card "
                   "has the figures): how well it ranks films is unknown, and it is not a probability to act on")

# measured by every source's pneumonia vs normal figures (roc_auc_pneumonia), not only per finding
_PAIR_LABELS = ("No Finding", "Pneumonia")


def _above_chance(figure: object) -> bool:
    """A figure {"value", "ci95": [low, high]} whose lower bound is above 0.5 (a missing or NaN bound is not)."""
    if not isinstance(figure, dict):
        return False
    ci = figure.get("ci95")
    low = ci[0] if isinstance(ci, list | tuple) and ci else None
    return isinstance(low, int | float) and not math.isnan(low) and low > 0.5


def validation_notes(manifest: dict, labels: Sequence[str]) -> dict[str, str]:
    """{label: why its score is not backed} for the labels of the label space among `labels` without a held-out
    ROC AUC whose 95 % CI lies above chance."""
    evaluation = (manifest.get("provenance") or {}).get("evaluation") or {}
    pair_backed = any(_above_chance(fig.get("roc_auc_pneumonia")) for fig in evaluation.values()
                      if isinstance(fig, dict))
    measured: dict[str, tuple[dict, str]] = {}
    floors: list[str] = []  # "10 NIH": the fewest patients with a finding its per-finding figures were measured on
    for name, fig in evaluation.items():
        if isinstance(fig, dict) and isinstance(fig.get("per_finding"), dict):
            where = name.removesuffix("_per_finding")
            if isinstance(fig.get("min_patients"), int):
                floors.append(f"{fig['min_patients']} {where}")
            for value in fig["per_finding"].values():
                if isinstance(value, dict) and isinstance(value.get("value"), int | float):
                    measured[normalise_label_name(str(value.get("label", "")))] = (value, where)
    notes: dict[str, str] = {}
    for label in labels:
        canonical = normalise_label_name(label)
        if not label.strip() or canonical not in CHEXPERT_LABELS:
            continue
        if canonical in _PAIR_LABELS and pair_backed:
            continue
        if canonical in measured:
            value, where = measured[canonical]
            if _above_chance(value):
                continue
            ci = value.get("ci95") or []
            bounds = f" (95 % CI {ci[0]:.2f}–{ci[1]:.2f})" if len(ci) == 2 and not math.isnan(ci[0]) else ""
            notes[label] = (f"its zero-shot ROC AUC on held-out {where} patients is {value['value']:.2f}{bounds}, "
                            f"{value.get('positive_patients', '?')} patients with it: not told apart from chance")
        elif evaluation:
            # a GUI walk: "never measured" read oddly for Effusion, with 60 effusion films in the NIH sample
            why = (f"fewer than {' / '.join(floors)} held-out patients have it, too few to measure its score"
                   if floors else "no held-out patients measured this label's score")
            notes[label] = f"not validated: {why} (see the model card)"
        else:
            notes[label] = ("no per-label validation figure in this model's manifest (see its model card): "
                            "how well this label's score ranks films is unknown")
    return notes
