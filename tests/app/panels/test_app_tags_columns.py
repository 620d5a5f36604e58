"""A GUI walk: in the Tags tab the Keyword column took its longest keyword's width and the Value column what was
left, so a leg film's StudyDescription read "Non-ossifying fibroma of …". The value column takes the room. Real
DICOM, offscreen, at 1280x800."""

from __future__ import annotations


def test_the_value_column_has_the_room_and_shows_the_study_description(window, qtbot, shared_data):
    w = window
    w.open_paths([str(shared_data / "dicom" / "RG3_J2KI.dcm")])
    qtbot.waitUntil(lambda: bool(w.images) and not w.busy(), timeout=60000)
    w.tabs.setCurrentWidget(w.tags)
    qtbot.waitUntil(lambda: w.tags.table.rowCount() > 0, timeout=30000)
    table = w.tags.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 1).text() == "StudyDescription")
    value = table.item(row, 2).text()
    assert value.startswith("Non-ossifying fibroma of ")
    qtbot.wait(50)
    keyword_width, value_width = table.columnWidth(1), table.columnWidth(2)
    assert value_width > keyword_width
    metrics = table.fontMetrics()
    assert metrics.horizontalAdvance(value) + 12 <= value_width  # the whole description, with the cell's margins
    longest = max((table.item(r, 1).text() for r in range(table.rowCount())), key=metrics.horizontalAdvance)
    assert table.item(next(r for r in range(table.rowCount()) if table.item(r, 1).text() == longest), 1).toolTip() \
        == longest  # an elided keyword is whole in its tooltip
