"""GUI walk 44 #8, the Tags tab on the leg film (RG3_J2KI) at 1280x800: about 250 px of the Value column stayed
empty beside short values while keywords read "Timezone…tFromUTC" and "PurposeOf…eSequence", and sequence items
were listed flat. The keywords get the room the values leave (a long value wraps), and a sequence's items sit
under it, indented, in tag order; patient-identifying tags stay hidden until revealed."""

from __future__ import annotations

from PySide6 import QtWidgets

from app.panels.tags_panel import VALUE_WIDTH, keyword_width


def _items(tree: QtWidgets.QTreeWidget) -> list[QtWidgets.QTreeWidgetItem]:
    out = []
    iterator = QtWidgets.QTreeWidgetItemIterator(tree)
    while iterator.value() is not None:
        out.append(iterator.value())
        iterator += 1
    return out


def _leg(window, qtbot, shared_data) -> QtWidgets.QTreeWidget:
    window.open_paths([str(shared_data / "dicom" / "RG3_J2KI.dcm")])
    qtbot.waitUntil(lambda: bool(window.images) and not window.busy(), timeout=60000)
    window.tabs.setCurrentWidget(window.tags)
    qtbot.waitUntil(lambda: window.tags.tree.topLevelItemCount() > 0, timeout=30000)
    qtbot.wait(50)
    return window.tags.tree


def test_keywords_take_the_room_short_values_leave(window, qtbot, shared_data, shown):
    tree = _leg(window, qtbot, shared_data)
    items = {item.text(1): item for item in _items(tree)}
    for keyword in ("TimezoneOffsetFromUTC", "ManufacturerModelName", "PurposeOfReferenceCodeSequence"):
        assert shown(tree, tree.indexFromItem(items[keyword], 1)) == keyword
    for keyword in ("StudyDescription", "DerivationDescription"):  # the long values stay whole too (GUI walk 43)
        value = items[keyword].text(2)
        assert shown(tree, tree.indexFromItem(items[keyword], 2)) == value
    # all of it on screen: no column pushed off to the right
    assert tree.columnWidth(0) + tree.columnWidth(1) + tree.columnWidth(2) <= tree.viewport().width() + 1


def test_sequence_items_sit_under_their_sequence(window, qtbot, shared_data):
    tree = _leg(window, qtbot, shared_data)
    items = _items(tree)
    source = next(i for i in items if i.text(1) == "SourceImageSequence")
    assert source.parent() is None and source.text(2) == "<1 item>"
    assert [source.child(c).text(1) for c in range(source.childCount())] == ["ReferencedSOPClassUID",
                                                                              "PurposeOfReferenceCodeSequence"]
    purpose = source.child(1)
    assert [purpose.child(c).text(1) for c in range(purpose.childCount())] == ["CodeValue", "CodingSchemeDesignator",
                                                                               "CodeMeaning"]
    assert purpose.child(0).text(0) == "(0008,0100)" and purpose.isExpanded() and source.isExpanded()
    # indented: a nested keyword starts right of its sequence's (as in the DICOM standard's tables); tags line up
    x = [tree.visualRect(tree.indexFromItem(i, 1)).x() for i in (source, purpose, purpose.child(0))]
    assert x[0] < x[1] < x[2]
    assert len({tree.visualRect(tree.indexFromItem(i, 0)).x() for i in (source, purpose, purpose.child(0))}) == 1
    top = [tree.topLevelItem(r).text(0) for r in range(tree.topLevelItemCount())]
    assert top == sorted(top) and "(0008,0100)" not in top  # the dataset's own tags in order; no stray CodeValue
    # revealed, an identifying tag joins its own item (it was sorted in among the dataset's own tags)
    window.tags.reveal.setChecked(True)
    source = next(i for i in _items(tree) if i.text(1) == "SourceImageSequence")
    assert [source.child(c).text(1) for c in range(source.childCount())] == [
        "ReferencedSOPClassUID", "ReferencedSOPInstanceUID", "PurposeOfReferenceCodeSequence"]
    window.tags.reveal.setChecked(False)
    assert "ReferencedSOPInstanceUID" not in {i.text(1) for i in _items(tree)}
    assert not {"PatientName", "PatientID", "AccessionNumber"} & {i.text(1) for i in _items(tree)}


def test_a_search_shows_a_match_with_its_sequence(window, qtbot, shared_data):
    tree = _leg(window, qtbot, shared_data)
    window.tags.search.setText("CodeMeaning")
    found = [(i.text(1), i.parent().text(1) if i.parent() else None) for i in _items(tree)]
    assert found == [("SourceImageSequence", None), ("PurposeOfReferenceCodeSequence", "SourceImageSequence"),
                     ("CodeMeaning", "PurposeOfReferenceCodeSequence"), ("DerivationCodeSequence", None),
                     ("CodeMeaning", "DerivationCodeSequence")]


def test_the_keyword_width_cuts_the_fewest_cells():
    # each row's keyword width and the width of its value's longest word (a value wraps at its spaces)
    assert keyword_width([80, 120], [50, 60], 400) == 120  # narrow keywords: whole
    assert keyword_width([100, 200, 240], [40, 40, 40], 400) == 240  # short words: every keyword whole
    assert keyword_width([100, 200, 240], [40, 180, 180], 400) == 220  # two UIDs whole, one keyword cut
    assert keyword_width([100, 200, 240], [40, 40, 180], 400) == 240  # one UID cut, rather than one keyword
    assert keyword_width([100, 300], [40, 40], 400) == 400 - VALUE_WIDTH  # the values keep their least width
    assert keyword_width([100, 300], [390, 390], 400) == 250  # the words are cut anyway: the keyword is not
    assert keyword_width([], [], 400) == 0
