"""Whether a zero-shot label's score is about the label, or about how abnormal the film looks.

Measured on the shipped v4 (docs/results.md, 2026-12-07): over 500 NIH and Kermany films, the findings-mode scores of
"COVID-19", "Tuberculosis", "Fracture" and "Hernia" rank the films as the "Pneumonia" score does (Spearman 0.97 to
1.00), and "Cardiomegaly" and "Nodule" nearly so (0.97, 0.95): typed side by side, such labels' bars rise and fall
together, and a researcher would read them as findings the model tells apart. It does not: it tells abnormal from
normal. A label's findings-mode logit is linear in the image embedding (scale x embedding . (prompt - negative
prompt)), so how two labels' scores co-vary over chest films follows from the films' embedding covariance, which the
bundle's chest-film reference holds (image_ood.ChestReference: top directions and the remaining variance). No film is
needed at run time; on those 500 films the figure computed this way was within 0.08 of the measured Spearman (0.07
at most: docs/results.md), the bound tests/medflip_core/inference/test_label_specificity.py holds on 160 others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medflip_core.labeler.labels import CHEXPERT_LABELS, normalise_label_name

ABNORMALITY_LABEL = "No Finding"  # its score, reversed, is the model's "how abnormal does this film look"
ALIKE_R = 0.95  # a label whose score correlates this much with abnormality is noted

ALIKE_TIP = ("its score rises and falls with how abnormal the model finds the film, as other findings' scores do: a "
             "high score says the film looks abnormal, hardly that it shows this finding rather than another")


def abnormality_correlations(engine, labels: Sequence[str]) -> dict[str, float]:
    """{label: correlation, over the chest films the model was trained on, of its findings-mode logit with the model's
    abnormality logit (No Finding's, reversed)}; {} when the bundle has no chest-film reference. `engine`: anything
    with ood_reference, class_embeddings and embed_texts (medflip_core.inference.engine.Engine)."""
    from medflip_core.inference.zeroshot import negative_texts
    from medflip_core.labeler.prompts import load_prompt_set

    reference = engine.ood_reference
    wanted = [lb for lb in dict.fromkeys(labels)
              if lb.strip() and normalise_label_name(lb) != ABNORMALITY_LABEL]
    if reference is None or not wanted:
        return {}
    every = [*wanted, ABNORMALITY_LABEL]
    directions = (np.asarray(engine.class_embeddings(every), dtype=np.float64)
                  - np.asarray(engine.embed_texts(negative_texts(every, load_prompt_set().negative_template)),
                               dtype=np.float64))
    cov = directions @ reference.covariance() @ directions.T
    sd = np.sqrt(np.clip(np.diag(cov), 1e-30, None))
    r = cov / np.outer(sd, sd)
    return {label: float(-r[i, -1]) for i, label in enumerate(wanted)}


def alike_notes(engine, labels: Sequence[str]) -> dict[str, str]:
    """{label: why} for the scored labels whose score is about abnormality (correlation >= ALIKE_R), when telling
    findings apart is the point: a label outside the label space, or two findings or more side by side. "No
    Finding" beside one finding (the usual normal-vs-pneumonia question) gets none."""
    findings = [lb for lb in labels if lb.strip() and normalise_label_name(lb) != ABNORMALITY_LABEL]
    outside = [lb for lb in findings if normalise_label_name(lb) not in CHEXPERT_LABELS]
    if len(findings) < 2 and not outside:
        return {}
    return {label: f"{ALIKE_TIP} (correlation {r:.2f} with the model's No Finding score, reversed, over the chest "
                   "films it was trained on)"
            for label, r in abnormality_correlations(engine, findings).items() if r >= ALIKE_R}
