"""GUI walk 44 #7: in the Batch table two Kermany films, K_NORMAL2-IM-0383-0001.jpeg and K_NORMAL2-IM-0384-0001.jpeg
(a researcher's mixed folder, one prefix per source), both read "K_NORMAL2-…-0001.jpeg": the File column cut them
in the middle. Cut at the start, they keep the number that tells them apart; the whole path is the tooltip."""

from __future__ import annotations

from app.panels.batch_panel import BatchPanel


def test_cut_file_names_keep_their_numbers(qtbot, shared_data, tmp_path, shown):
    normal = shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL"
    paths = []
    for name in ("NORMAL2-IM-0383-0001.jpeg", "NORMAL2-IM-0384-0001.jpeg"):
        (tmp_path / f"K_{name}").symlink_to(normal / name)
        paths.append(str(tmp_path / f"K_{name}"))
    panel = BatchPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 600)
    panel.show()
    rows = [{"path": p, "scores": {"No Finding": 0.8, "Pneumonia": 0.1}, "top": "No Finding"} for p in paths]
    panel.show_results(["No Finding", "Pneumonia"], rows, folder=str(tmp_path))
    table = panel.table
    indexes = [table.model().index(r, 0) for r in range(2)]
    texts = [shown(table, i) for i in indexes]
    assert texts[0] != texts[1], texts  # at the column's own width
    for width in range(60, table.columnWidth(0) + 60, 3):  # and at any width it is dragged to
        table.setColumnWidth(0, width)
        texts = [shown(table, i) for i in indexes]
        if len(texts[0]) < len("…3-0001.jpeg"):  # too narrow for any cut to keep the digit that differs
            continue
        assert texts[0] != texts[1], (width, texts)
        assert texts[0].startswith("…") or texts[0] == "K_NORMAL2-IM-0383-0001.jpeg", texts
    assert table.item(0, 0).toolTip().splitlines()[0] in paths  # the whole path on hover
