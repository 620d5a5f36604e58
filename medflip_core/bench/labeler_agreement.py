"""How well the labeler agrees with the IU reports' MeSH major tags, report by report.

MeSH tags were assigned by people reading the reports, so they are a fair (if coarse) reference for
the classes both vocabularies name. This prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from medflip_core.labeler.labels import LABEL_INDEX
from medflip_core.labeler.rules import label_report
from medflip_core.reports import Report, load_reports
from medflip_core.resources import default_shared_data

DATA_SET = "IU X-ray (Open-i) reports, MeSH major tags"

# MeSH major term (text before the first '/') -> CheXpert class, for the classes both vocabularies name.
MESH_TO_CHEXPERT: dict[str, str] = {
    "normal": "No Finding",
    "Cardiomegaly": "Cardiomegaly",
    "Pulmonary Atelectasis": "Atelectasis",
    "Pleural Effusion": "Pleural Effusion",
    "Pulmonary Edema": "Edema",
    "Pulmonary Congestion": "Edema",
    "Pneumonia": "Pneumonia",
    "Consolidation": "Consolidation",
    "Pneumothorax": "Pneumothorax",
    "Opacity": "Lung Opacity",
    "Airspace Disease": "Lung Opacity",
    "Infiltrate": "Lung Opacity",
    "Nodule": "Lung Lesion",
    "Mass": "Lung Lesion",
    "Fractures, Bone": "Fracture",
    "Catheters, Indwelling": "Support Devices",
    "Implanted Medical Device": "Support Devices",
    "Tube, Inserted": "Support Devices",
    "Surgical Instruments": "Support Devices",
    "Stents": "Support Devices",
    "Medical Device": "Support Devices",
}


def mesh_classes(report: Report) -> set[str]:
    out = set()
    for tag in report.mesh_major:
        term = tag.split("/")[0].strip()
        if term in MESH_TO_CHEXPERT:
            out.add(MESH_TO_CHEXPERT[term])
    return out


def labeler_vs_mesh(reports: list[Report]) -> dict:
    """Per class: MeSH positives, labeler positives, precision, recall, F1 (uncertain counted apart)."""
    classes = sorted(set(MESH_TO_CHEXPERT.values()), key=lambda c: LABEL_INDEX[c])
    used = [r for r in reports
            if r.text and r.mesh_major and not any(t.startswith("No Indexing") for t in r.mesh_major)]
    truth = np.array([[c in mesh_classes(r) for c in classes] for r in used], dtype=bool)
    vectors = np.stack([label_report(r.text) for r in used])
    rows = {}
    for j, cls in enumerate(classes):
        pred = vectors[:, LABEL_INDEX[cls]] == 1
        unc = vectors[:, LABEL_INDEX[cls]] == -1
        tp = int((pred & truth[:, j]).sum())
        precision = tp / pred.sum() if pred.sum() else float("nan")
        recall = tp / truth[:, j].sum() if truth[:, j].sum() else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
        rows[cls] = {"n_mesh": int(truth[:, j].sum()), "n_labeler": int(pred.sum()), "n_uncertain": int(unc.sum()),
                     "precision": float(precision), "recall": float(recall), "f1": float(f1)}
    return {"data_set": DATA_SET, "n_reports": len(used), "classes": rows}


def default_reports_path() -> Path:
    return default_shared_data() / "iu-xray-reports" / "NLMCXR_reports.tgz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medflip bench labeler", description=__doc__)
    parser.add_argument("--reports", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = labeler_vs_mesh(load_reports(args.reports or default_reports_path()))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"labeler vs {result['data_set']} ({result['n_reports']} reports with findings/impression and tags)")
    print(f"{'class':<22} {'MeSH+':>6} {'lab+':>6} {'unc':>5} {'prec':>6} {'recall':>6} {'F1':>6}")
    for cls, r in result["classes"].items():
        print(f"{cls:<22} {r['n_mesh']:>6} {r['n_labeler']:>6} {r['n_uncertain']:>5} {r['precision']:>6.3f} "
              f"{r['recall']:>6.3f} {r['f1']:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
