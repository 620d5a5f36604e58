"""The out-of-distribution check as a hospital outside its reference meets it (`medflip bench ood
--leave-one-source-out`): each chest data set of the reference in turn is left out, the reference is fitted and
calibrated on the others as medflip_core.bench.ood builds the bundle's, and the left-out set's held-out films are
judged as a new hospital's chest films would be."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medflip_core.bench.ood import (
    REFERENCE_PER_SET,
    Measured,
    _embedded_non_chest,
    _stack,
    _take,
    chest_items,
    fold_reference,
    measure,
)
from medflip_core.resources import default_shared_data


def leave_one_source_out(model: str | None, per_set: int | None, reference_per_set: int = REFERENCE_PER_SET,
                         calibrate_per_set: int = 300) -> dict:
    """The check as a hospital outside the reference meets it: for each chest source, a reference fitted and
    calibrated without it (the bundle's layout margin kept), then the left-out source's validate films (a new
    hospital's chest films), the other sources' validate films and the validate non-chest images, each judged by
    the layout (this version's check) and by the pooled embedding (the check before it)."""
    from medflip_core.bundles.model_store import resolve_model
    from medflip_core.inference.engine import Engine

    engine = Engine(resolve_model(model), prefer_gpu=False)
    shipped = engine.ood_reference
    margin = shipped.layout_margin if shipped is not None and shipped.layout is not None else 1.0
    items = chest_items(default_shared_data())
    ref = list(measure(engine, _take(items, "reference", reference_per_set), invert=True))
    cal = list(measure(engine, _take(items, "calibrate", calibrate_per_set), invert=True))
    val = list(measure(engine, _take(items, "validate", per_set)))
    missed = [m for m in _embedded_non_chest(engine, "validate") if not m.pixel_reasons]

    def shares(reference, films: Sequence[Measured]) -> dict:
        if not films:
            return {"n": 0, "layout": None, "embedding": None}
        emb, lay = _stack(films, "embedding"), _stack(films, "layout")
        return {"n": len(films), "layout": float(np.mean(reference.far(emb, lay))),
                "embedding": float(np.mean(reference.distance(emb) > reference.threshold))}

    folds = []
    for left in dict.fromkeys(m.item.source for m in ref):
        fold = fold_reference([m for m in ref if m.item.source != left], [m for m in cal if m.item.source != left],
                              margin=margin)
        folds.append({"left_out": left, "new_source": shares(fold, [m for m in val if m.item.source == left]),
                      "reference_sources": shares(fold, [m for m in val if m.item.source != left]),
                      "non_chest_missed_by_pixels": shares(fold, missed)})
    return {"model": engine.bundle.name, "layout_margin": margin, "folds": folds}


def format_leave_one_source_out(r: dict) -> str:
    lines = [f"model {r['model']}: each chest source left out of the reference in turn (layout margin "
             f"{r['layout_margin']:.2f}); flagged share, layout check (embedding check before it)", ""]
    for fold in r["folds"]:
        cells = []
        for key, name in (("new_source", "its chest films, as a new hospital's"),
                          ("reference_sources", "the other sources' held-out films"),
                          ("non_chest_missed_by_pixels", "non-chest images the pixel checks miss")):
            c = fold[key]
            cells.append(f"{name}: {c['layout']:.1%} ({c['embedding']:.1%}) of {c['n']}" if c["n"] else
                         f"{name}: none")
        lines.append(f"  without {fold['left_out']}:\n    " + "\n    ".join(cells))
    return "\n".join(lines)
