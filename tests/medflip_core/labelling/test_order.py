"""Which patients a classifier validates on when the patient-id draw left a class short (labelling.order)."""

from __future__ import annotations

from medflip_core.data.patient_sides import filled_validation


def test_a_short_class_gets_training_patients_moved_until_it_has_enough():
    patients = [f"p{i}" for i in range(10)]
    labels = [("A",)] * 5 + [("B",)] * 5
    validation = [True, False, False, False, False, True, True, True, False, False]
    sides, moved = filled_validation(patients, labels, validation, ["A", "B"], need=2)
    assert len(moved) == 1 and moved[0] in patients[1:5]
    assert sum(s for s, lb in zip(sides, labels, strict=True) if lb == ("A",)) == 2
    assert sides[5:] == validation[5:]  # B already had 3
    assert filled_validation(patients, labels, validation, ["A", "B"], need=2) == (sides, moved)  # deterministic


def test_no_class_is_left_short_on_the_training_side():
    # A has 4 patients: 1 validation, 3 training; needing 3 on each side, none can move
    patients = ["a1", "a2", "a3", "a4"]
    sides, moved = filled_validation(patients, [("A",)] * 4, [True, False, False, False], ["A"], need=3)
    assert moved == [] and sides == [True, False, False, False]
    # a patient with A and B moves for A only while B keeps enough training patients
    patients = ["x", "y", "z", "u", "w"]
    labels = [("A",), ("A", "B"), ("A",), ("A",), ("B",)]
    sides, moved = filled_validation(patients, labels, [True, False, False, False, False], ["A", "B"], need=2)
    assert len(moved) == 1 and moved[0] in ("z", "u")  # y would leave B one training patient
    # a patient's several films share one side
    sides, moved = filled_validation(["q", "q", "r", "r", "s"], [("A",)] * 5, [False] * 5, ["A"], need=1)
    assert len(moved) == 1 and sides[0] == sides[1] and sides[2] == sides[3]
