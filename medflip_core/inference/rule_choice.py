"""Choosing the zero-shot decision rule on validation data (bias and temperature of the pairs or softmax rule), and
measuring that choice on patients it was not made on (split-half check). Used when a bundle is built
(scripts/build_default_model.py); the engine only applies the rule it is given (inference.zeroshot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medflip_core.inference.zeroshot import DecisionRule, rule_logits, rule_probabilities
from medflip_core.labeler.labels import normalise_label_name


@dataclass(frozen=True)
class ValidationSource:
    """One validation data set for choosing a rule: image embeddings, true class index, its name."""

    name: str
    image_emb: np.ndarray
    truth: np.ndarray


GAP_TOLERANCE = 0.05  # accuracy a rule may leave below the best threshold on any source (issue 11's target)
TEMPERATURES = tuple(float(t) for t in np.round(np.exp(np.linspace(np.log(0.25), np.log(8.0), 61)), 4))


def choose_decision_rule(
    sources: Sequence[ValidationSource], pos_emb: np.ndarray, neg_emb: np.ndarray, labels: Sequence[str],
    logit_scale: float, bias_label: str, biases: Sequence[float] = tuple(np.round(np.arange(-8, 8.01, 0.05), 2)),
    temperatures: Sequence[float] = TEMPERATURES, gap_tolerance: float = GAP_TOLERANCE,
) -> tuple[DecisionRule, list[dict]]:
    """Pick mode (softmax vs pairs), a prompt bias on `bias_label` and a temperature on VALIDATION data of every
    source, every source weighted alike (a rule right for one hospital and wrong for another loses):

    1. decisions: a (mode, bias) is admissible when on every source its accuracy is within `gap_tolerance` of
       that source's best-threshold accuracy (if none is, the smallest worst gap is);
    2. confidence: among admissible rules and temperatures, the lowest worst-source negative log-likelihood
       (a proper score: smooth, unlike the binned ECE it is reported with), then the smaller worst gap.

    The temperature is chosen with the bias, not after it: with one source's margins shifted (NIH adults sit
    nearer the pneumonia side than Kermany children), a bias inside the tolerance can trade a little accuracy
    for calibration on both sources. Returns the rule and the table of the best temperature per (mode, bias)."""
    from medflip_core.metrics import best_threshold_accuracy

    labels = list(labels)
    if len(labels) != 2:
        raise ValueError("choose_decision_rule handles two exclusive classes (e.g. No Finding vs Pneumonia)")
    target = labels.index(bias_label)
    temps = np.asarray(temperatures, dtype=np.float64)
    table = []
    for mode in ("softmax", "pairs"):
        base = [rule_logits(s.image_emb, pos_emb, neg_emb, labels, DecisionRule(mode), logit_scale)
                for s in sources]
        margins = [z[:, target] - z[:, 1 - target] for z in base]
        ceilings = [best_threshold_accuracy(s.truth == target, m)[0] for s, m in zip(sources, margins, strict=True)]
        for b in biases:
            accs, nlls = [], []
            for s, m in zip(sources, margins, strict=True):
                shifted = m + b
                accs.append(float(np.mean((shifted > 0) == (s.truth == target))))
                # two classes: the true class's NLL under softmax(z / T) is softplus(-(+-margin) / T)
                sign = np.where(s.truth == target, 1.0, -1.0)
                nlls.append(np.logaddexp(0.0, -sign[None, :] * shifted[None, :] / temps[:, None]).mean(axis=1))
            worst_nll = np.max(nlls, axis=0)
            t_best = int(np.argmin(worst_nll))
            worst_gap = max(c - a for c, a in zip(ceilings, accs, strict=True))
            table.append({"mode": mode, "bias": float(b), "temperature": float(temps[t_best]),
                          "worst_gap": worst_gap, "worst_nll": float(worst_nll[t_best]),
                          "mean_accuracy": float(np.mean(accs)),
                          **{f"accuracy[{s.name}]": a for s, a in zip(sources, accs, strict=True)},
                          **{f"nll[{s.name}]": float(n[t_best]) for s, n in zip(sources, nlls, strict=True)}})
    best = rank_rules(table, gap_tolerance)[0]
    chosen_on = "validation patients of " + ", ".join(s.name for s in sources)
    rule = DecisionRule(best["mode"], {normalise_label_name(bias_label).lower(): best["bias"]}, best["temperature"],
                        chosen_on)
    return rule, table


def rank_rules(table: Sequence[dict], gap_tolerance: float = GAP_TOLERANCE) -> list[dict]:
    """The candidates of `choose_decision_rule` best first, in the order it chooses by: admissible rules (worst
    gap within the tolerance) by worst-source NLL, then worst gap; if none is admissible, all by worst gap,
    then NLL; ties to the smaller |bias|."""
    def key(r: dict) -> tuple:
        if r["worst_gap"] <= gap_tolerance + 1e-12:
            return (0, round(r["worst_nll"], 9), round(r["worst_gap"], 9), abs(r["bias"]))
        return (1, round(r["worst_gap"], 6), round(r["worst_nll"], 9), abs(r["bias"]))

    return sorted(table, key=key)


def split_half_check(
    sources: Sequence[ValidationSource], patients: Sequence[Sequence[str]], pos_emb: np.ndarray,
    neg_emb: np.ndarray, labels: Sequence[str], logit_scale: float, bias_label: str, seed: int = 0,
) -> dict:
    """How well the rule choice carries to patients it was not chosen on: split each source's patients in two
    halves, choose on one half, measure the accuracy gap and the ECE on the other, both ways round (means).
    Figures on the full validation set are optimistic by the choice; these are not, but use half the data."""
    from medflip_core.metrics import best_threshold_accuracy, expected_calibration_error

    if len(patients) != len(sources) or any(len(p) != len(s.truth) for s, p in zip(sources, patients, strict=False)):
        raise ValueError("split_half_check needs one patient id per image of every source")
    rng = np.random.default_rng(seed)
    halves = []
    for pats in patients:
        unique = sorted(set(pats))
        first = set(rng.permutation(unique)[: len(unique) // 2].tolist())
        halves.append(np.array([p in first for p in pats]))
    target = list(labels).index(bias_label)
    out: dict[str, dict[str, list[float]]] = {s.name: {"ece": [], "gap": []} for s in sources}
    for side in (True, False):
        fit = [ValidationSource(s.name, s.image_emb[h == side], s.truth[h == side])
               for s, h in zip(sources, halves, strict=True)]
        rule, _ = choose_decision_rule(fit, pos_emb, neg_emb, labels, logit_scale, bias_label)
        for s, h in zip(sources, halves, strict=True):
            keep = h != side
            probs = rule_probabilities(s.image_emb[keep], pos_emb, neg_emb, labels, rule, logit_scale)
            truth = s.truth[keep]
            ceiling = best_threshold_accuracy(truth == target, probs[:, target])[0]
            out[s.name]["ece"].append(expected_calibration_error(truth, probs))
            out[s.name]["gap"].append(float(ceiling - np.mean(probs.argmax(axis=1) == truth)))
    return {name: {k: float(np.mean(v)) for k, v in d.items()} for name, d in out.items()}
