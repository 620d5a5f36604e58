"""A GUI walk: in the Tags tab the Keyword column took its longest keyword's width and the Value column what was
left, so a leg film's StudyDescription read "Non-ossifying fibroma of …". The value reads whole (a long value wraps
onto a second line since GUI walk 44 gave the keywords their room). Real DICOM, offscreen, at 1280x800."""

from __future__ import annotations

from PySide6 import QtWidgets


def test_the_value_column_has_the_room_and_shows_the_study_description(window, qtbot, shared_data, shown):
    w = window
    w.open_paths([str(shared_data / "dicom" / "RG3_J2KI.dcm")])
    qtbot.waitUntil(lambda: bool(w.images) and not w.busy(), timeout=60000)
    w.tabs.setCurrentWidget(w.tags)
    qtbot.waitUntil(lambda: w.tags.tree.topLevelItemCount() > 0, timeout=30000)
    tree = w.tags.tree
    items = []
    iterator = QtWidgets.QTreeWidgetItemIterator(tree)
    while iterator.value() is not None:
        items.append(iterator.value())
        iterator += 1
    item = next(i for i in items if i.text(1) == "StudyDescription")
    value = item.text(2)
    assert value.startswith("Non-ossifying fibroma of ")
    qtbot.wait(50)
    assert shown(tree, tree.indexFromItem(item, 2)) == value  # the whole description (on two lines if need be)
    metrics = tree.fontMetrics()
    longest = max(items, key=lambda i: metrics.horizontalAdvance(i.text(1)))
    assert longest.toolTip(1) == longest.text(1)  # an elided keyword is whole in its tooltip
