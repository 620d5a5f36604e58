"""The decision rule's sentence says 'calibrated probability' only for a classifier whose calibration was fitted:
a small-data probe's results view said 'not calibrated' above 'when its calibrated probability is at or above'."""

from __future__ import annotations

from medflip_core.inference.classifier import decision_rule_sentence


def test_the_rule_names_calibration_only_when_there_is_one():
    for multi, positive in ((False, 1), (True, None)):
        calibrated = decision_rule_sentence(["NORMAL", "PNEUMONIA"], multi, positive, [0.43, 0.57])
        plain = decision_rule_sentence(["NORMAL", "PNEUMONIA"], multi, positive, [0.43, 0.57], calibrated=False)
        assert "calibrated probability" in calibrated
        assert "calibrated" not in plain and "probability is at or above" in plain
    assert "PNEUMONIA when its probability is at or above 0.570" in decision_rule_sentence(
        ["NORMAL", "PNEUMONIA"], False, 1, [0.43, 0.57], calibrated=False)
