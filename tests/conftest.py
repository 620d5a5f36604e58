"""Shared fixtures: the real data under ../shared/data, offline Hugging Face, offscreen Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDFLIP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA

@pytest.fixture(scope="session")
def kermany_folder(shared_data, tmp_path_factory):
    """make(per_class[, root]) -> an ImageFolder (NORMAL/, PNEUMONIA/) of links to the first `per_class` real
    Kermany training films of each class, several per patient (patients from the file names)."""

    def make(per_class: int, root: Path | None = None) -> Path:
        root = root or tmp_path_factory.mktemp(f"kermany_{2 * per_class}")
        src = shared_data / "cxr-pneumonia-kermany" / "train"
        for cls in ("NORMAL", "PNEUMONIA"):
            (root / cls).mkdir(parents=True)
            for f in sorted((src / cls).iterdir())[:per_class]:
                (root / cls / f.name).symlink_to(f)
        return root

    return make


@pytest.fixture(scope="session")
def labelling_csv(shared_data):
    """make(out[, per_class]) -> a Labelling tab's labels.csv (its exact columns) over real Kermany training films,
    one film per patient, the answers from the folder names; `Image Index` relative to the Kermany train folder
    (the labelled folder), as the Labelling tab writes it."""
    import csv

    from medflip_core.data.patient_sides import LABELLING_CSV_COLUMNS

    kermany = shared_data / "cxr-pneumonia-kermany" / "train"

    def make(out: Path, per_class: int = 20) -> Path:
        with open(out, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(LABELLING_CSV_COLUMNS)
            for folder, answer in (("NORMAL", "No Finding"), ("PNEUMONIA", "Pneumonia")):
                seen: set[str] = set()
                for f in sorted((kermany / folder).iterdir()):
                    patient = f.name.split("_")[0] if folder == "PNEUMONIA" else "-".join(f.name.split("-")[:2])
                    if patient in seen:
                        continue
                    seen.add(patient)
                    writer.writerow([f"{folder}/{f.name}", answer, patient, "in order", "2026-12-07T10:00:00Z"])
                    if len(seen) == per_class:
                        break
        return out

    return make


@pytest.fixture(scope="session")
def small_folder(kermany_folder) -> Path:
    return kermany_folder(16)


@pytest.fixture(scope="session")
def corpus(shared_data) -> Path:
    return shared_data / "iu-xray-reports" / "NLMCXR_reports.tgz"


def trainer_cmd(job: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "trainer", job, *args]


def small_args(folder: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["--images", str(folder), "--corpus", str(corpus), "--max-sentences", "300", "--image-size", "112",
            "--batch-size", "4", "--val-fraction", "0.25", "--max-val-images", "8", "--warmup-steps", "1",
            "--out-dir", str(out), *extra]


def run_trainer(job: str, args: list[str], timeout: float = 600, **kwargs) -> tuple[int, list[dict], str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(trainer_cmd(job, *args), capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=REPO, **kwargs)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, events, proc.stderr


def run_torchrun(job: str, args: list[str], nproc: int = 2, timeout: float = 600) -> tuple[int, list[dict], str]:
    """The trainer under torchrun with gloo CPU processes (one BLAS thread each); rank 0's events."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m",
           "trainer", job, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, events, proc.stderr


class TrainerTools:
    """The helpers above as a fixture (test modules cannot import conftest under importlib mode)."""

    repo = REPO
    cmd = staticmethod(trainer_cmd)
    args = staticmethod(small_args)
    run = staticmethod(run_trainer)
    torchrun = staticmethod(run_torchrun)


def write_distinct_copies(source: Path, folder: Path, n: int, name: str = "c{:03d}.dcm") -> list[Path]:
    """n copies of a real film, each its own SOP instance: a study of n different images to any reader (no
    duplicates: every one is decoded)."""
    import pydicom

    folder.mkdir(exist_ok=True)
    ds = pydicom.dcmread(source)
    base, out = str(ds.SOPInstanceUID)[:56].rstrip("."), []
    for i in range(n):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{base}.{i + 1}"
        out.append(folder / name.format(i))
        ds.save_as(out[-1])
    return out


@pytest.fixture(scope="session")
def distinct_copies():
    """write_distinct_copies as a fixture (test modules cannot import conftest under importlib mode)."""
    return write_distinct_copies


@pytest.fixture(scope="session")
def tt() -> TrainerTools:
    return TrainerTools()


@pytest.fixture(scope="session")
def trained_run(small_folder, corpus, tmp_path_factory) -> Path:
    """One real pre-training run shared by the export and engine tests."""
    out = tmp_path_factory.mktemp("run")
    code, events, err = run_trainer("pretrain", small_args(small_folder, corpus, out, "--max-steps", "4",
                                                           "--eval-every", "4", "--checkpoint-every", "2"))
    assert code == 0, err[-3000:]
    assert events[-1]["event"] == "done"
    return out


@pytest.fixture(scope="session")
def mim_decoder_run(small_folder, corpus, tmp_path_factory) -> Path:
    """A real 2-step pre-training run with masked image modelling: its checkpoint holds the decoder."""
    out = tmp_path_factory.mktemp("mim_decoder_run")
    code, _, err = run_trainer("pretrain", small_args(small_folder, corpus, out, "--max-steps", "2", "--eval-every",
                                                      "0", "--checkpoint-every", "2", "--mim-weight", "1",
                                                      "--decoder-depth", "1", "--decoder-width", "64"))
    assert code == 0, err[-3000:]
    return out


@pytest.fixture(scope="session")
def both_target_run(small_folder, corpus, tmp_path_factory) -> Path:
    """A real 2-step reconstruction-only run whose decoder predicts the `both` target (normalised patches and the
    pixels as they are)."""
    out = tmp_path_factory.mktemp("both_target_run")
    code, _, err = run_trainer("pretrain", small_args(small_folder, corpus, out, "--max-steps", "2", "--eval-every",
                                                      "0", "--checkpoint-every", "2", "--mim-weight", "1",
                                                      "--clip-weight", "0", "--mim-target", "both",
                                                      "--decoder-depth", "1", "--decoder-width", "64"))
    assert code == 0, err[-3000:]
    return out


@pytest.fixture(scope="session")
def tiny_bundle(trained_run, tmp_path_factory) -> Path:
    """A real bundle exported from the short real training run, with a 300-sentence bank."""
    from medflip_core.model.export import SHIPPED_CORPUS, bank_selection, export_checkpoint, resolve_checkpoint
    from medflip_core.resources import resources_dir

    corpus_path = resources_dir() / SHIPPED_CORPUS
    indices, labels = bank_selection(corpus_path, max_sentences=300)
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    bank = {"corpus": corpus_path, "indices": indices, "labels": labels, "corpus_ref": SHIPPED_CORPUS}
    return export_checkpoint(resolve_checkpoint(trained_run), out, name="tiny-test", sentence_bank=bank)
