from __future__ import annotations

import tarfile

import pytest

from medflip_core.errors import ReportParseError
from medflip_core.reports import clean_deid, load_reports, load_sentence_corpus, split_sentences


@pytest.fixture(scope="module")
def archive(shared_data):
    return shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz"


@pytest.fixture(scope="module")
def reports(archive):
    return load_reports(archive)


def test_reads_every_iu_report_from_the_archive(reports):
    assert len(reports) == 3955
    assert sum(bool(r.findings) for r in reports) == 3425
    assert sum(bool(r.impression) for r in reports) == 3921
    assert len({r.report_id for r in reports}) == 3955
    assert sum(bool(r.mesh_major) for r in reports) > 3800
    assert all(i.startswith("CXR") and "_IM-" in i for r in reports for i in r.image_ids)
    first = next(r for r in reports if r.report_id == "CXR1")
    assert first.mesh_major == ("normal",) and first.indication == "Positive TB test"


def test_folder_and_single_xml(archive, tmp_path):
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".xml")][:3]
        tar.extractall(tmp_path, members=members, filter="data")
    folder_reports = load_reports(tmp_path)
    assert len(folder_reports) == 3
    single = load_reports(next(tmp_path.rglob("*.xml")))
    assert len(single) == 1 and single[0].report_id in {r.report_id for r in folder_reports}


def test_csv_and_txt(reports, tmp_path):
    texts = [r.text for r in reports[:4] if r.text]
    csv = tmp_path / "r.csv"
    csv.write_text("id,report\n" + "\n".join(f'{i},"{t}"' for i, t in enumerate(texts)))
    assert [r.findings for r in load_reports(csv)] == texts
    txt = tmp_path / "r.txt"
    txt.write_text("\n\n".join(texts))
    assert len(load_reports(txt)) == len(texts)
    bad = tmp_path / "nocol.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ReportParseError, match="no report text column"):
        load_reports(bad)


def test_bad_inputs_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<eCitation><Abstract>")
    with pytest.raises(ReportParseError, match=r"broken\.xml"):
        load_reports(broken)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportParseError, match="no Open-i XML"):
        load_reports(empty)
    with pytest.raises(ReportParseError, match="no such file"):
        load_reports(tmp_path / "missing.tgz")
    pdf = tmp_path / "x.pdf"
    pdf.write_text("%PDF-1.4")
    with pytest.raises(ReportParseError, match="unsupported"):
        load_reports(pdf)


def test_split_sentences_hand_cases():
    assert split_sentences("1. Cardiomegaly. 2. Small effusion measuring 2.5 cm. Dr. Smith was notified.") == [
        "Cardiomegaly.", "Small effusion measuring 2.5 cm.", "Dr. Smith was notified."]
    assert split_sentences("No acute disease.\n\nHeart normal.") == ["No acute disease.", "Heart normal."]
    assert split_sentences("  ") == []
    assert split_sentences("Heart size 1.5 cm. Approx. 3 nodules.") == ["Heart size 1.5 cm.", "Approx. 3 nodules."]


def test_deid_token_removed_and_tidy():
    assert clean_deid("There are no XXXX of a pleural effusion.") == "There are no of a pleural effusion."
    assert clean_deid("Normal chest x-XXXX.") == "Normal chest."
    assert "XXXX" not in clean_deid("XXXX XXXX, XXXX")


def test_sentence_corpus_is_clean_and_unique(archive):
    sentences = load_sentence_corpus(archive)
    assert 8000 < len(sentences) < 9000
    assert len(set(sentences)) == len(sentences)
    assert not any("XXXX" in s.upper() for s in sentences)
    assert all(len(s.split()) >= 2 for s in sentences)
