"""Agreement with the IU MeSH major tags must not regress (floors = measured minus a margin)."""

from __future__ import annotations

import pytest

from medflip_core.bench.labeler_agreement import labeler_vs_mesh, main
from medflip_core.reports import load_reports

# measured 2026-11-22 (precision, recall); the test allows 0.05 below them
MEASURED = {
    "No Finding": (0.856, 0.957),
    "Cardiomegaly": (0.835, 0.877),
    "Lung Opacity": (0.790, 0.982),
    "Atelectasis": (0.931, 0.807),
    "Pleural Effusion": (0.760, 0.863),
    "Support Devices": (0.828, 0.839),
}


@pytest.fixture(scope="module")
def result(shared_data):
    return labeler_vs_mesh(load_reports(shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz"))


@pytest.mark.parametrize("cls", sorted(MEASURED))
def test_big_classes_do_not_regress(result, cls):
    precision, recall = MEASURED[cls]
    row = result["classes"][cls]
    assert row["precision"] >= precision - 0.05
    assert row["recall"] >= recall - 0.05


def test_report_names_its_data_set(result):
    assert "IU X-ray" in result["data_set"] and result["n_reports"] > 3700


def test_benchmark_prints_a_table(shared_data, capsys):
    assert main(["--reports", str(shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz")]) == 0
    out = capsys.readouterr().out
    assert "Cardiomegaly" in out and "prec" in out
