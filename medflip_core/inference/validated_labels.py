"""Which zero-shot labels a model's own validation figures back, read from its manifest.

A GUI walk: Edema 73 % and Atelectasis 36 % looked exactly like Pneumonia's bar, while the model card says
Atelectasis's held-out ROC AUC is 0.556 (its CI includes chance) and Edema was never measured. Labels outside the
label space are zeroshot.outside_label_space's business; this names, for the model's own labels, those whose score
was never measured on held-out patients, or was measured and cannot be told from chance.
"""

from __future__ import annotations

from collections.abc import Sequence

from medflip_core.labeler.labels import CHEXPERT_LABELS, normalise_label_name

UNVALIDATED_TIP = ("no validation figure of this model backs this label's score (never measured on held-out "
                   "patients, or measured and not told apart from chance; the model card has the figures): compare "
                   "it between images, do not read it as a probability")

# measured by every source's pneumonia vs normal figures (roc_auc_pneumonia), not only per finding
_PAIR_LABELS = ("No Finding", "Pneumonia")


def validation_notes(manifest: dict, labels: Sequence[str]) -> dict[str, str]:
    """{label: why its score is not backed by a validation figure} for the labels of the label space among
    `labels` that have one; a label with a held-out ROC AUC whose 95 % CI lies above chance is left out."""
    evaluation = (manifest.get("provenance") or {}).get("evaluation") or {}
    sources = {name: fig for name, fig in evaluation.items() if isinstance(fig, dict) and "roc_auc_pneumonia" in fig}
    measured: dict[str, tuple[dict, str]] = {}
    for name, fig in evaluation.items():
        if isinstance(fig, dict) and isinstance(fig.get("per_finding"), dict):
            where = name.removesuffix("_per_finding")
            for value in fig["per_finding"].values():
                if isinstance(value, dict) and "value" in value:
                    measured[normalise_label_name(str(value.get("label", "")))] = (value, where)
    notes: dict[str, str] = {}
    for label in labels:
        canonical = normalise_label_name(label)
        if not label.strip() or canonical not in CHEXPERT_LABELS:
            continue
        if not sources and not measured:
            notes[label] = "this model was never evaluated on held-out patients: no score of it is measured"
        elif canonical in measured:
            value, where = measured[canonical]
            low, high = (value.get("ci95") or [0.0, 1.0])[:2]
            if low <= 0.5:
                notes[label] = (f"its zero-shot ROC AUC on held-out {where} patients is {value['value']:.2f} (95 % CI "
                                f"{low:.2f}–{high:.2f}, {value.get('positive_patients', '?')} patients with it): "
                                "not told apart from chance")
        elif not (canonical in _PAIR_LABELS and sources):
            notes[label] = ("not validated: no held-out patients measured this finding's score (see the model "
                            "card); compare it between images, do not read it as a probability")
    return notes
