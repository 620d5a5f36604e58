"""GUI walk 44 #8: a leg film's sequences were listed flat in the Tags tab, CodeValue and CodeMeaning rows of two
sequences one after the other with nothing to say which sequence they belong to, and with the identifying tags
revealed every row was sorted by its tag, so a sequence's items landed far from it. The tag rows say how deep
each one is nested, stay in the file's order (revealed or not), and a sequence about the patient hides all it
holds. Real DICOM (the leg film RG3_J2KI, its own sequences, and a copy given more)."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medflip_core.imaging import IDENTIFYING_KEYWORDS, load_image
from medflip_core.imaging.tag_rows import matching


def _nested(rows, keyword: str) -> list[tuple[str, int]]:
    """The rows after `keyword`'s row that are nested in it: (keyword, depth)."""
    start = next(i for i, r in enumerate(rows) if r.keyword == keyword)
    inside = []
    for row in rows[start + 1:]:
        if row.depth <= rows[start].depth:
            break
        inside.append((row.keyword, row.depth))
    return inside


def test_a_sequence_holds_its_items_elements_in_tag_order(shared_data):
    rg = load_image(shared_data / "dicom" / "RG3_J2KI.dcm")
    rows = rg.all_tags()
    assert _nested(rows, "SourceImageSequence") == [
        ("ReferencedSOPClassUID", 1), ("PurposeOfReferenceCodeSequence", 1),  # ReferencedSOPInstanceUID: hidden
        ("CodeValue", 2), ("CodingSchemeDesignator", 2), ("CodeMeaning", 2)]
    assert _nested(rows, "DerivationCodeSequence") == [("CodeValue", 1), ("CodingSchemeDesignator", 1),
                                                       ("CodeMeaning", 1)]
    assert next(r for r in rows if r.keyword == "SourceImageSequence").value == "<1 item>"
    top = [r.tag for r in rows if r.depth == 0]
    assert top == sorted(top)  # the dataset's own elements in tag order, each sequence's items under it
    assert all(r.depth == 0 for r in rows if r.keyword in ("StudyDescription", "BodyPartExamined"))


def test_revealed_tags_keep_the_files_order(shared_data):
    """Revealed, ReferencedSOPInstanceUID sits in its sequence's item, after ReferencedSOPClassUID; it was sorted
    in among the dataset's own (0008,…) tags, and each sequence's CodeValue beside the other's."""
    rg = load_image(shared_data / "dicom" / "RG3_J2KI.dcm")
    revealed = rg.all_tags(reveal_identifying=True)
    assert [r.order for r in revealed] == sorted(r.order for r in revealed)
    assert _nested(revealed, "SourceImageSequence")[:2] == [("ReferencedSOPClassUID", 1),
                                                           ("ReferencedSOPInstanceUID", 1)]
    assert {r.keyword for r in rg.all_tags()}.isdisjoint(IDENTIFYING_KEYWORDS)


def _with_more_sequences(source: Path, out: Path) -> Path:
    """The leg film with a second DerivationCodeSequence item and an OtherPatientIDsSequence (patient ids, with a
    TypeOfPatientID, a keyword that identifies no one by itself)."""
    ds = pydicom.dcmread(source)
    second = Dataset()
    second.CodeValue, second.CodingSchemeDesignator, second.CodeMeaning = "113076", "DCM", "Segmentation"
    ds.DerivationCodeSequence.append(second)
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID = "MRN-0042-SECRET", "Saint Example", "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.save_as(out)
    return out


def test_several_items_are_told_apart_and_a_patients_sequence_hides_all_it_holds(shared_data, tmp_path):
    rg = load_image(_with_more_sequences(shared_data / "dicom" / "RG3_J2KI.dcm", tmp_path / "leg.dcm"))
    rows = rg.all_tags()
    assert _nested(rows, "DerivationCodeSequence") == [
        ("Item 1", 1), ("CodeValue", 2), ("CodingSchemeDesignator", 2), ("CodeMeaning", 2),
        ("Item 2", 1), ("CodeValue", 2), ("CodingSchemeDesignator", 2), ("CodeMeaning", 2)]
    assert next(r for r in rows if r.keyword == "DerivationCodeSequence").value == "<2 items>"
    assert next(r for r in rows if r.keyword == "Item 2").is_item
    shown = {r.keyword for r in rows} | {r.value for r in rows}
    assert {"OtherPatientIDsSequence", "TypeOfPatientID", "MRN-0042-SECRET", "Saint Example"}.isdisjoint(shown)
    revealed = rg.all_tags(reveal_identifying=True)
    assert _nested(revealed, "OtherPatientIDsSequence") == [("PatientID", 1), ("IssuerOfPatientID", 1),
                                                           ("TypeOfPatientID", 1)]


def test_a_search_keeps_what_a_match_is_nested_in(shared_data):
    rows = load_image(shared_data / "dicom" / "RG3_J2KI.dcm").all_tags()
    found = matching(rows, "codemeaning")
    assert [(r.keyword, r.depth) for r in found] == [
        ("SourceImageSequence", 0), ("PurposeOfReferenceCodeSequence", 1), ("CodeMeaning", 2),
        ("DerivationCodeSequence", 0), ("CodeMeaning", 1)]
    assert matching(rows, "") == rows
    assert [r.keyword for r in matching(rows, "EXTREMITY")] == ["BodyPartExamined"]
