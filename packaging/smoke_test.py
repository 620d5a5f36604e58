"""Smoke test of the BUILT release (not the source tree), from the unpacked archives' folders:
`python packaging/smoke_test.py dist/MedFLIPStudio-<v>-linux-<arch>/ --addon dist/MedFLIPStudio-trainer-<v>-...`

Installs the light app with its own install.sh into a throw-away HOME and runs the installed executable from an
empty working directory, so nothing from the checkout or the developer's venv can stand in for what the bundle
lacks. Without the trainer add-on it
  1. checks the bundle holds no tests, caches, headers, and nothing of torch & co.; reports what takes the space;
  2. times the installed window's first show (--startup-report, three launches);
  3. scores every real DICOM of the shared data through the frozen CLI (`--medflip classify`), which needs
     pydicom's decoder plugins inside the bundle;
  4. opens the JPEG 2000 DICOM in the GUI offscreen, scores it and saves a screenshot;
  5. fine-tunes a probe on real labelled films (`--medflip finetune --mode probe`);
  6. checks that pre-training and partial fine-tuning say what to install (the add-on) and start nothing;
  7. checks where inference runs (`--medflip gpu`): the CPU, and no CUDA runtime inside the light app;
then installs the add-on with its own install.sh (the app is not reinstalled) and
  8. checks that the light app now finds the add-on's CUDA runtime, built for its own ONNX Runtime, and loads
     every CUDA library from it: without an NVIDIA driver only the driver is missing, with one it is on the GPU;
  9. starts a short pre-training job through the light app (`--trainer pretrain`, which runs the add-on), cancels
     it with SIGTERM once it has stepped (what the GUI's Cancel button sends), checks the checkpoint, resumes it;
 10. uninstalls the add-on, then the app: the run folder and the probe's bundle are kept.
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
from bundle_report import forbidden_files, size_report, torch_files  # noqa: E402

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
    heavy = torch_files(app_dir)
    _check(not heavy, "nothing of torch, torchvision, timm, transformers, triton, nvidia-*, SimpleITK inside",
           "\n".join(map(str, heavy[:20])))
    print(size_report(app_dir))


def install(stage: Path, home: Path, what: str) -> None:
    proc = subprocess.run(["sh", str(stage / "install.sh")], capture_output=True, text=True, timeout=600,
                          cwd=home, env=_env(home))
    _check(proc.returncode == 0, f"{what} installed with its install.sh", proc.stdout + proc.stderr)


def uninstall(script: Path, home: Path, what: str) -> None:
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=120, cwd=home, env=_env(home))
    _check(proc.returncode == 0 and not script.parent.exists(), f"{what} uninstalled", proc.stdout + proc.stderr)


def check_startup(exe: Path, home: Path) -> list[float]:
    print("[2] the installed window's first show (three launches; the first is the cold one)")
    times = []
    for _ in range(3):
        env = {**_env(home), "MEDFLIP_LAUNCH_TIME": repr(time.time())}
        proc = subprocess.run([str(exe), "--offscreen", "--startup-report"], capture_output=True, text=True,
                              timeout=120, cwd=home, env=env)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("window shown")), "")
        _check(proc.returncode == 0 and bool(line), "the window was shown", proc.stdout + proc.stderr)
        times.append(float(line.split()[2]))
    print(f"  window on screen after {', '.join(f'{t:.2f}' for t in times)} s")
    return times


def check_probe(exe: Path, data: Path, home: Path) -> None:
    print("[5] frozen CLI fine-tunes a probe on real labelled films (no torch)")
    images = _small_folder(data, home / "probe-images", per_class=30)
    out = home / ".local/share/medflip-studio/models/smoke-probe"
    proc = _run(exe, ["--medflip", "finetune", "--mode", "probe", "--images", str(images), "--out", str(out),
                      "--val-fraction", "0.3", "--n-boot", "100"], home, 600)
    _check(proc.returncode == 0 and (out / "manifest.json").is_file(), f"classifier bundle written ({out.name})",
           proc.stdout + proc.stderr)
    print("  " + "\n  ".join(proc.stdout.splitlines()[:2]))


def check_trainer_absent(exe: Path, data: Path, home: Path) -> None:
    print("[6] without the add-on: pre-training and partial fine-tuning say what to install")
    images = _small_folder(data, home / "images")
    for args in (["--trainer", "pretrain", *_trainer_args(data, images, home / "no-run", 4)],
                 ["--medflip", "train", "pretrain", "--images", str(images)],
                 ["--medflip", "finetune", "--mode", "partial", "--images", str(images), "--out",
                  str(home / "no-bundle")]):
        proc = _run(exe, args, home, 120)
        _check(proc.returncode == 2 and "trainer add-on" in proc.stderr and "install.sh" in proc.stderr
               and "Traceback" not in proc.stderr, f"{' '.join(args[:3])}: one sentence, exit 2", proc.stderr)
    _check(not (home / "no-run").exists() and not (home / "no-bundle").exists(), "nothing was started")
    print(f"  {proc.stderr.strip()[:300]}")


def _gpu_report(exe: Path, home: Path) -> dict:
    proc = _run(exe, ["--medflip", "gpu", "--json"], home, 120)
    _check(proc.returncode == 0, "`--medflip gpu` exits 0", proc.stdout + proc.stderr)
    return json.loads(proc.stdout)


def check_gpu_without_addon(exe: Path, home: Path) -> None:
    print("[7] where inference runs without the add-on")
    report = _gpu_report(exe, home)
    _check(report["runtimes"] == [], "no CUDA runtime inside the light app", json.dumps(report, indent=1))
    _check(report["device"].startswith("Inference runs on the CPU"), report["device"])


def check_gpu_with_addon(exe: Path, home: Path) -> None:
    print("[8] with the add-on: the light app finds its CUDA runtime and loads it")
    report = _gpu_report(exe, home)
    detail = json.dumps(report, indent=1)
    addon = next((r for r in report["runtimes"] if r["source"] == "the trainer add-on"), None)
    _check(addon is not None, "the add-on's CUDA runtime is found", detail)
    _check(addon["onnxruntime"] == report["onnxruntime"] and not addon["missing"],
           f"built for this app's ONNX Runtime {report['onnxruntime']}, with all "
           f"{sum(v is not None for v in addon['libraries'].values())} CUDA libraries", detail)
    if report["driver_error"] is None:
        _check(addon.get("loaded") is True and addon.get("gpus", 0) > 0, f"on the GPU: {report['device']}", detail)
    else:
        _check(addon["problem"] == f"the NVIDIA driver ({report['driver']}) is not installed",
               f"every CUDA library loaded from the add-on; only the driver is missing here ({report['driver']})",
               detail)
    print(f"  {report['device']}")


def check_classify(exe: Path, data: Path, home: Path) -> None:
    print("[3] frozen CLI scores every real DICOM (JPEG baseline, JPEG 2000 lossless/lossy, uncompressed)")
    proc = _run(exe, ["--medflip", "classify", str(data / "dicom"), "--json"], home, 300)
    _check(proc.returncode == 0, "classify exits 0", proc.stderr)
    rows = json.loads(proc.stdout)["results"]
    failed = [r["path"] for r in rows if not r.get("scores")]
    _check(len(rows) >= 8 and not failed, f"{len(rows)} files scored (decoder plugins found)", "\n".join(failed))
    scores = next(r["scores"] for r in rows if r["path"].endswith(Path(DICOM).name))
    _check(all(0.0 <= float(v) <= 1.0 for v in scores.values()),
           f"scores for {len(scores)} labels: {dict(list(scores.items())[:3])}", proc.stdout)


def check_gui(exe: Path, data: Path, home: Path, out: Path) -> None:
    print("[4] frozen GUI opens, scores and screenshots a DICOM offscreen")
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


def _small_folder(data: Path, root: Path, per_class: int = 12) -> Path:
    src = data / "cxr-pneumonia-kermany" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((src / cls).iterdir())[:per_class]:
            if not (root / cls / f.name).exists():
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
    print("[9] with the add-on installed: the light app's trainer starts, is cancelled with SIGTERM, resumes")
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
    parser.add_argument("stage", type=Path, help="the unpacked light release (holds install.sh and MedFLIPStudio/)")
    parser.add_argument("--addon", type=Path, help="the unpacked trainer add-on release (install.sh, "
                                                   "MedFLIPStudio-trainer/); without it steps 8-10 are skipped")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MEDFLIP_SHARED_DATA")
                                                          or HERE.parent.parent / "shared" / "data"),
                        help="the shared real data (default: $MEDFLIP_SHARED_DATA, else ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="where the screenshot goes")
    args = parser.parse_args(argv)
    if not (args.stage / "MedFLIPStudio" / "MedFLIPStudio").is_file():
        raise SystemExit(f"no built app in {args.stage}: run `make dist` first")
    if not (args.data / DICOM).is_file():
        raise SystemExit(f"shared data not found at {args.data}")
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve()
    start = time.monotonic()
    check_contents(args.stage / "MedFLIPStudio")
    with tempfile.TemporaryDirectory(prefix="medflip-smoke-") as tmp:
        home = Path(tmp)
        install(args.stage.resolve(), home, "the light app")
        appdir = home / ".local/opt/medflip-studio"
        exe = appdir / "MedFLIPStudio"
        check_startup(exe, home)
        check_classify(exe, data, home)
        check_gui(exe, data, home, args.out.resolve())
        check_probe(exe, data, home)
        check_trainer_absent(exe, data, home)
        check_gpu_without_addon(exe, home)
        if args.addon:
            install(args.addon.resolve(), home, "the trainer add-on, beside the installed app")
            check_gpu_with_addon(exe, home)
            check_training(exe, data, home)
            print("[10] uninstalling the add-on, then the app, keeps the runs and models")
            uninstall(home / ".local/opt/medflip-studio-trainer/uninstall.sh", home, "the add-on")
            _check(exe.is_file(), "the app is still installed")
            uninstall(appdir / "uninstall.sh", home, "the app")
            kept = [home / "run" / "config.json", home / ".local/share/medflip-studio/models/smoke-probe/manifest.json"]
            _check(all(p.is_file() for p in kept), "the run folder and the probe's bundle are kept")
        else:
            print("[8-10] skipped: no --addon given")
    print(f"smoke test passed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
