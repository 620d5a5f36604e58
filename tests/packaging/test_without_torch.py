"""The light installer's promise, checked in the normal venv: the app's own import graph, with torch, torchvision,
timm, transformers and triton made unimportable (a sys.meta_path finder set up before anything else in a fresh
`python -c`), opens and scores a real JPEG 2000 DICOM in the window, fine-tunes a probe on real labelled films,
and answers pre-training and partial/full fine-tuning (Training tab and CLI) with what to install and how."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "torchvision", "timm", "transformers", "triton")

BLOCKER = f"""
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (made unimportable by the test)", name=name)
        return None
sys.meta_path.insert(0, NoTorch())
"""


def _run_blocked(script: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MEDFLIP_TRAINER"}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    code = BLOCKER + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env)


def _results(proc: subprocess.CompletedProcess) -> dict:
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_blocker_really_blocks_torch(tmp_path):
    """The finder is what makes the other tests mean something: torch is installed in this venv."""
    proc = _run_blocked("""
        import importlib.util, json
        assert importlib.util.find_spec("trainer") is not None
        try:
            import torch  # noqa: F401
            print("RESULT " + json.dumps({"imported": True}))
        except ModuleNotFoundError as exc:
            print("RESULT " + json.dumps({"imported": False, "error": str(exc)}))
    """, tmp_path)
    assert _results(proc) == {"imported": False,
                              "error": "No module named 'torch' (made unimportable by the test)"}


@pytest.mark.slow
def test_window_opens_and_scores_a_jpeg2000_dicom_without_torch(shared_data, tmp_path):
    dicom = shared_data / "dicom" / "RG1_J2KR.dcm"
    shot = tmp_path / "shot.png"
    proc = _run_blocked(f"""
        import json, sys
        from app.main import main
        code = main(["--offscreen", "--open", {str(dicom)!r}, "--tab", "Zero-shot", "--screenshot", {str(shot)!r},
                     "--timeout", "120"])
        print("RESULT " + json.dumps({{"code": code, "modules": sorted(m for m in sys.modules
                                                                if m.split(".")[0] in {BLOCKED!r})}}))
    """, tmp_path)
    result = _results(proc)
    assert result == {"code": 0, "modules": []}
    scores = next(x for x in proc.stdout.splitlines() if x.startswith("scores "))
    values = json.loads(scores[len("scores "):])
    assert "Pneumonia" in values and all(0.0 <= v <= 1.0 for v in values.values())
    assert shot.stat().st_size > 20_000


def test_training_tab_says_what_to_install_without_torch(tmp_path):
    """Pre-training and partial fine-tuning start no process and say what to install; the probe is not refused."""
    proc = _run_blocked(f"""
        import json
        from PySide6 import QtWidgets
        app = QtWidgets.QApplication([])
        from app.training.run_folders import FINETUNE, PRETRAIN
        from app.training.training_panel import TrainingPanel
        panel = TrainingPanel()
        said = []
        panel.message.connect(said.append)
        panel.form.images.setText({str(tmp_path)!r})
        out = {{}}
        for job, mode in ((PRETRAIN, "probe"), (FINETUNE, "partial"), (FINETUNE, "full")):
            panel.form.job.setCurrentIndex(panel.form.job.findData(job))
            panel.form.mode.setCurrentText(mode)
            said.clear()
            panel.start()
            out[f"{{job}}/{{mode}}"] = {{"started": panel.process is not None, "said": said[-1] if said else "",
                                         "stats": panel.status.stats.text()}}
        panel.form.mode.setCurrentText("probe")  # the probe's job starts (here on an empty folder: it fails at once)
        said.clear()
        panel.start()
        probe_started = panel.process is not None
        if probe_started:
            panel.process.waitForFinished(60000)
        print("RESULT " + json.dumps({{"jobs": out, "probe_started": probe_started, "probe_said": said}}))
    """, tmp_path)
    result = _results(proc)
    assert result["probe_started"], result
    assert not any("PyTorch" in x for x in result["probe_said"]), result
    result = result["jobs"]
    for job, seen in result.items():
        assert not seen["started"], job
        assert "need the trainer (PyTorch), which is not installed" in seen["said"], job
        assert "pip install -c constraints.txt torch" in seen["said"], job
        assert "probe fine-tuning" in seen["said"], job
        assert "trainer add-on" in seen["stats"], job


@pytest.mark.slow
def test_probe_finetunes_and_tower_modes_explain_without_torch(kermany_folder, tmp_path):
    images = kermany_folder(30, tmp_path / "images")
    bundle = tmp_path / "probe-bundle"
    proc = _run_blocked(f"""
        import contextlib, io, json, sys
        from medflip_core.cli import main
        out = {{}}
        for name, argv in (
            ("probe", ["finetune", "--mode", "probe", "--images", {str(images)!r}, "--out", {str(bundle)!r},
                       "--val-fraction", "0.3", "--n-boot", "50"]),
            ("partial", ["finetune", "--mode", "partial", "--images", {str(images)!r}, "--out",
                         {str(tmp_path / "partial")!r}]),
            ("train", ["train", "pretrain", "--images", {str(images)!r}]),
            ("export", ["export", {str(tmp_path / "run")!r}, {str(tmp_path / "exported")!r}]),
        ):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(argv)
            out[name] = {{"code": code, "stderr": err.getvalue()}}
        out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
        print("RESULT " + json.dumps(out))
    """, tmp_path)
    result = _results(proc)
    assert result["modules"] == []
    assert result["probe"]["code"] == 0, result["probe"]["stderr"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["classifier"]["mode"] == "probe" and manifest["classifier"]["classes"] == ["NORMAL", "PNEUMONIA"]
    for name in ("partial", "train", "export"):
        assert result[name]["code"] == 2, name
        assert "need the trainer (PyTorch), which is not installed" in result[name]["stderr"], name
        assert "Traceback" not in result[name]["stderr"], name
    assert result["partial"]["stderr"].startswith("medflip: error: --mode partial:")
    assert not (tmp_path / "partial").exists()


def _addon_wrapper(path: Path) -> Path:
    """The trainer add-on's entry point (packaging/trainer_launcher.py, what MedFLIPStudio-trainer runs) behind an
    executable at `path`, run by this venv's Python, which has torch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {REPO / "packaging" / "trainer_launcher.py"} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("where", ["user data folder", "MEDFLIP_TRAINER"])
def test_the_trainer_addon_is_found_and_trains_without_torch_here(small_folder, corpus, tmp_path, where):
    """Installing the add-on (here: in the user data folder, or named by MEDFLIP_TRAINER) makes `medflip train`
    of a torch-less environment run a real pre-training in it; without it the same command says what to install."""
    from tests.conftest import small_args

    out = tmp_path / "run"
    addon = (tmp_path / "data" / "medflip-studio" / "trainer" / "MedFLIPStudio-trainer" if where == "user data folder"
             else tmp_path / "elsewhere" / "trainer")
    setenv = f"import os; os.environ['MEDFLIP_TRAINER'] = {str(addon)!r}" if where == "MEDFLIP_TRAINER" else ""
    train = ["train", "pretrain", *small_args(small_folder, corpus, out, "--max-steps", "2")]
    script = f"""
        import json
        {setenv}
        from medflip_core.cli import main
        from medflip_core.processes import trainer_addon, trainer_missing
        missing, found = trainer_missing(), trainer_addon()
        code = main({train!r}) if found else None
        print("RESULT " + json.dumps({{"missing": missing, "found": str(found), "code": code}}))
    """
    before = _results(_run_blocked(script, tmp_path))
    assert "need the trainer (PyTorch), which is not installed" in before["missing"]
    assert before["found"] == "None" and not out.exists()

    _addon_wrapper(addon)
    proc = _run_blocked(script, tmp_path)
    result = _results(proc)
    assert result == {"missing": None, "found": str(addon), "code": 0}, proc.stderr[-3000:]
    events = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert events[-1]["event"] == "done" and events[-1]["step"] == 2
    assert (out / "config.json").is_file()
