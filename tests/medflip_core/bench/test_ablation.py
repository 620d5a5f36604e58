"""The ablation benchmark's paired comparison: read each run's per-image CSV, compare on the same images."""

from __future__ import annotations

import numpy as np
import pytest

from medflip_core.bench.ablation import paired_against_first, paired_table
from medflip_core.evaluation.evaluate import write_per_image_csv
from medflip_core.metrics import roc_auc_binary


def _run(tmp_path, name: str, paths: list[str], truth: list[str], p_pneumonia: np.ndarray) -> dict:
    result = {"classes": ["NORMAL", "PNEUMONIA"],
              "per_image": [{"path": p, "truth": t, "probs": [1 - s, s]}
                            for p, t, s in zip(paths, truth, p_pneumonia, strict=True)]}
    csv_path = tmp_path / f"{name}.csv"
    write_per_image_csv(result, csv_path)
    return {"name": name, "per_image_csv": str(csv_path)}


def test_paired_comparison_lines_up_images_by_path(tmp_path):
    rng = np.random.default_rng(1)
    n = 200
    paths = [f"/val/{'PNEUMONIA' if i % 3 else 'NORMAL'}/img{i:03d}.jpeg" for i in range(n)]
    truth = ["PNEUMONIA" if i % 3 else "NORMAL" for i in range(n)]
    y = np.array([t == "PNEUMONIA" for t in truth])
    strong = np.clip(0.5 + 0.3 * (y - 0.5) + 0.15 * rng.normal(size=n), 0, 1)
    weak = np.clip(0.5 + 0.05 * (y - 0.5) + 0.15 * rng.normal(size=n), 0, 1)
    order = rng.permutation(n)  # the second run listed its images in another order
    rows = [_run(tmp_path, "masked", paths, truth, strong),
            _run(tmp_path, "unmasked", [paths[i] for i in order], [truth[i] for i in order], weak[order])]
    pairs = paired_against_first(rows, n_boot=300)
    assert len(pairs) == 1 and pairs[0]["first"] == "masked" and pairs[0]["other"] == "unmasked"
    expected = roc_auc_binary(y, strong) - roc_auc_binary(y, weak)
    assert pairs[0]["difference"] == pytest.approx(expected, abs=1e-5)
    assert pairs[0]["ci95"][0] > 0 and pairs[0]["p_b_not_worse"] < 0.05
    text = paired_table(pairs)
    assert "masked − unmasked" in text and f"{expected:+.3f}" in text


def test_runs_evaluated_on_different_images_are_refused(tmp_path):
    rows = [_run(tmp_path, "a", ["/v/N/1", "/v/P/2"], ["NORMAL", "PNEUMONIA"], np.array([0.2, 0.8])),
            _run(tmp_path, "b", ["/v/N/1", "/v/P/3"], ["NORMAL", "PNEUMONIA"], np.array([0.2, 0.8]))]
    with pytest.raises(SystemExit, match="same images"):
        paired_against_first(rows)


def test_paired_comparison_resamples_patients(tmp_path):
    rng = np.random.default_rng(4)
    paths, truth, strong, weak = [], [], [], []
    for patient in range(40):  # every patient has 5 images that share their difficulty
        y = patient % 2
        base = rng.normal()
        for image in range(5):
            paths.append(f"/val/{'PNEUMONIA' if y else 'NORMAL'}/person{patient}_virus_{image}.jpeg")
            truth.append("PNEUMONIA" if y else "NORMAL")
            strong.append(0.5 + 0.2 * (y - 0.5) + 0.1 * base)
            weak.append(0.5 + 0.1 * (y - 0.5) + 0.1 * base + 0.05 * rng.normal())
    rows = [_run(tmp_path, "a", paths, truth, np.clip(strong, 0, 1)),
            _run(tmp_path, "b", paths, truth, np.clip(weak, 0, 1))]
    by_patient = paired_against_first(rows, n_boot=300)[0]
    assert by_patient["resampled"] == "patient"
    # one patient per image (a pattern that matches nothing readable): narrower, overconfident interval
    by_image = paired_against_first(rows, n_boot=300, patient_pattern=r"^(.*)$")[0]
    width = lambda p: p["ci95"][1] - p["ci95"][0]  # noqa: E731
    assert width(by_patient) > 1.3 * width(by_image)


def test_max_images_never_trains_on_a_validation_patient(shared_data):
    """The ablation evaluates on `medflip split` of the whole folder; a --max-images run must not train on it."""
    from medflip_core.data.image_folder import index_image_folder, patient_split
    from trainer.config import TrainConfig
    from trainer.training_data import build_training_data

    folder = shared_data / "cxr-pneumonia-kermany" / "train"
    _, val = patient_split(index_image_folder(folder), 0.15, seed=0)  # what `medflip split` links as val/
    val_patients = {r.patient_id for r in val}
    cfg = TrainConfig(job="finetune", images=[str(folder)], max_images=600, val_fraction=0.15, seed=0,
                      max_steps=1)
    data = build_training_data(cfg, tokenize=None)
    assert len(data.train) == 600
    assert not val_patients & {r.patient_id for r in data.train}
    assert [r.path for r in data.val] == [r.path for r in val]


def test_data_suite_changes_one_thing_per_run_and_needs_a_second_source(tmp_path, capsys):
    """Each run of the data suite differs from the first (the default model's recipe) in one choice only; the
    trainer accepts every run's flags; without --extra-sources the suite refuses to start."""
    from medflip_core.bench.ablation import DATA_CONFIGS, main
    from trainer.cli import build_parser
    from trainer.config_flags import resolve_config

    reference = DATA_CONFIGS[next(iter(DATA_CONFIGS))]
    for name, extra in list(DATA_CONFIGS.items())[1:]:
        assert extra != reference, name
        args = build_parser().parse_args(["pretrain", "--images", "x", "--corpus", "y", "--max-steps", "1", *extra])
        cfg = resolve_config("pretrain", args)
        assert cfg.source_weights in ("0.5,0.5", "size") and cfg.sample_within_source in ("class", "image")
    with pytest.raises(SystemExit):
        main(["--suite", "data", "--work", str(tmp_path)])
    assert "--extra-sources" in capsys.readouterr().err
