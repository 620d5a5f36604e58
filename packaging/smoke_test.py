"""Smoke test of the BUILT app (not the source tree): `python packaging/smoke_test.py dist/.../MedFLIPStudio`.

Runs the frozen executable from an empty working directory with a throw-away HOME, so nothing from the
checkout or the developer's venv can stand in for what the bundle lacks. It
  1. checks the bundle holds no tests, caches or headers and reports what takes the space;
  2. scores every real DICOM of the shared data through the frozen CLI (`--medflip classify`), which
     needs pydicom's decoder plugins inside the bundle;
  3. opens the same DICOM in the GUI offscreen, scores it and saves a screenshot;
  4. starts a short pre-training job through the frozen trainer (`--trainer pretrain`), cancels it with
     SIGTERM once it has stepped (what the GUI's Cancel button sends), checks the checkpoint, and resumes it.
Stdlib only. Exit code 0 when every check passes; each failure prints what was expected and what came back.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bundle_report import forbidden_files, size_report  # noqa: E402

DICOM = "dicom/RG1_J2KR.dcm"  # 1955 x 1841 JPEG 2000 lossless CR


def _env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")}
    return {**keep, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
            "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}


def _run(exe: Path, args: list[str], home: Path, timeout: float) -> subprocess.CompletedProcess:
    start = time.monotonic()
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=home,
                          env=_env(home))
    print(f"  $ {exe.name} {' '.join(args[:3])} ... -> exit {proc.returncode} in {time.monotonic() - start:.1f} s")
    return proc


def _check(ok: bool, what: str, detail: str = "") -> None:
    if not ok:
        raise SystemExit(f"SMOKE FAILED: {what}\n{detail[-3000:]}")
    print(f"  ok: {what}")


def check_contents(app_dir: Path) -> None:
    print("[1] bundle contents")
    bad = forbidden_files(app_dir)
    _check(not bad, "no tests, caches, headers or development tools inside", "\n".join(map(str, bad[:20])))
    print(size_report(app_dir))


def check_classify(exe: Path, data: Path, home: Path) -> None:
    print("[2] frozen CLI scores every real DICOM (JPEG baseline, JPEG 2000 lossless/lossy, uncompressed)")
    proc = _run(exe, ["--medflip", "classify", str(data / "dicom"), "--json"], home, 300)
    _check(proc.returncode == 0, "classify exits 0", proc.stderr)
    rows = json.loads(proc.stdout)["results"]
    failed = [r["path"] for r in rows if not r.get("scores")]
    _check(len(rows) >= 8 and not failed, f"{len(rows)} files scored (decoder plugins found)", "\n".join(failed))
    scores = next(r["scores"] for r in rows if r["path"].endswith(Path(DICOM).name))
    _check(all(0.0 <= float(v) <= 1.0 for v in scores.values()),
           f"scores for {len(scores)} labels: {dict(list(scores.items())[:3])}", proc.stdout)


def check_gui(exe: Path, data: Path, home: Path, out: Path) -> None:
    print("[3] frozen GUI opens, scores and screenshots a DICOM offscreen")
    shot = out / "smoke-zero-shot.png"
    proc = _run(exe, ["--offscreen", "--open", str(data / DICOM), "--tab", "Zero-shot", "--size", "1400x860",
                      "--screenshot", str(shot), "--timeout", "120"], home, 300)
    _check(proc.returncode == 0 and shot.is_file() and shot.stat().st_size > 20_000,
           f"screenshot saved ({shot})", proc.stdout + proc.stderr)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("scores ")), "")
    _check(bool(line), "the GUI scored the image", proc.stdout + proc.stderr)
    print(f"  {line[:160]}")


def _trainer_args(data: Path, images: Path, out_dir: Path, steps: int) -> list[str]:
    return ["--images", str(images), "--corpus", str(data / "iu-xray-reports" / "NLMCXR_reports.tgz"),
            "--max-sentences", "300", "--image-size", "112", "--batch-size", "4", "--val-fraction", "0.25",
            "--max-val-images", "8", "--warmup-steps", "1", "--eval-every", "0", "--checkpoint-every", "1000",
            "--max-steps", str(steps), "--out-dir", str(out_dir)]


def _small_folder(data: Path, root: Path) -> Path:
    src = data / "cxr-pneumonia-kermany" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((src / cls).iterdir())[:12]:
            (root / cls / f.name).symlink_to(f)
    return root


def _wait_for_output(proc: subprocess.Popen, needle: str, timeout: float) -> bool:
    """True once `needle` appears on the process's stdout; False on exit or timeout (never blocks longer)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(fd, 65536).decode("utf-8", "replace")
        if not chunk:
            return False
        seen += chunk
        if needle in seen.replace(" ", ""):
            return True
    return False


def check_training(exe: Path, data: Path, home: Path) -> None:
    print("[4] frozen trainer: start, cancel with SIGTERM, resume")
    images = _small_folder(data, home / "images")
    run = home / "run"
    # stderr to a file: an unread pipe fills up (warnings, logs) and would block the trainer
    log = open(home / "trainer-stderr.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(exe), "--trainer", "pretrain", *_trainer_args(data, images, run, 400)],
                            stdout=subprocess.PIPE, stderr=log, cwd=home, env=_env(home))
    stepped = _wait_for_output(proc, '"event":"step"', timeout=600)
    if not stepped:
        proc.kill()
        proc.wait()
    log.seek(0)
    _check(stepped, "the trainer reported a training step", log.read())
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    out = rest.decode("utf-8", "replace")
    log.seek(0)
    err = log.read()
    log.close()
    done = json.loads(out.strip().splitlines()[-1])
    _check(proc.returncode == 0 and done.get("event") == "done" and done.get("status") == "cancelled",
           f"cancelled cleanly at step {done.get('step')}", out + err)
    checkpoints = sorted((run / "checkpoints").glob("step-*"))
    _check(bool(checkpoints), f"a checkpoint was written ({checkpoints[-1].name if checkpoints else '-'})", err)
    target = int(done["step"]) + 1
    resumed = _run(exe, ["--trainer", "pretrain", "--config", str(run / "config.json"), "--resume",
                         "--max-steps", str(target)], home, 600)
    events = [json.loads(x) for x in resumed.stdout.splitlines() if x.startswith("{")]
    _check(resumed.returncode == 0 and events and events[-1].get("event") == "done"
           and events[-1].get("step") == target, f"resumed and finished at step {target}",
           resumed.stdout + resumed.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app_dir", type=Path, help="the built one-folder bundle (holds the MedFLIPStudio executable)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="where the screenshot goes")
    args = parser.parse_args(argv)
    exe = (args.app_dir / "MedFLIPStudio").resolve()
    if not exe.is_file():
        raise SystemExit(f"no built app at {exe}: run `make dist` first")
    if not (args.data / DICOM).is_file():
        raise SystemExit(f"shared data not found at {args.data}")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    check_contents(args.app_dir)
    with tempfile.TemporaryDirectory(prefix="medflip-smoke-") as tmp:
        home = Path(tmp)
        check_classify(exe, args.data.resolve(), home)
        check_gui(exe, args.data.resolve(), home, args.out.resolve())
        check_training(exe, args.data.resolve(), home)
    print(f"smoke test passed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
