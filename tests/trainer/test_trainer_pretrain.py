"""The real trainer process on real images and reports: events, resume after kill -9, cancel, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from trainer.checkpoint import latest_checkpoint

pytestmark = pytest.mark.slow


def test_run_leaves_config_and_checkpoints(trained_run):
    events = [json.loads(x) for x in (trained_run / "events.jsonl").read_text().splitlines()] if (
        trained_run / "events.jsonl").exists() else None
    assert events is None  # events went to stdout, not a file
    ckpt = latest_checkpoint(trained_run)
    assert ckpt.step == 4
    assert (trained_run / "config.json").is_file()
    state = ckpt.state
    assert state["config"]["mask_ratio"] == 0.75 and state["model_config"]["image_size"] == 112
    assert state["config"]["model"] == state["model_config"]  # the trainer's config nests the model's


def test_event_stream_contents(tt, small_folder, corpus, tmp_path):
    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path, "--max-steps", "2",
                                                           "--eval-every", "2", "--checkpoint-every", "1"))
    assert code == 0, err[-2000:]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert events[0]["amp"] == "off" and events[0]["grad_scaler"] is False  # CPU: float32 under amp=auto
    assert events[0]["image_cache_mb"] == 2048  # decoded images kept across epochs and evaluations (default)
    assert {"step", "eval", "checkpoint"} <= set(kinds)
    step = next(e for e in events if e["event"] == "step")
    for key in ("step", "epoch", "loss", "contrastive", "svd", "sigma1_pos", "sigma1_neg", "lr",
                "samples_per_s", "eta_s", "grad_norm"):
        assert key in step
    assert "sigma1" not in step  # one name per figure (sigma1 was always sigma1_pos)
    assert step["loss"] > 0 and step["svd"] > 0
    ev = next(e for e in events if e["event"] == "eval")
    assert "val_auc" in ev and "validation" in ev["data_set"]
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 2


def _wait_for_checkpoint(out, proc, step, timeout=300):
    start = time.time()
    while time.time() - start < timeout:
        ckpt = latest_checkpoint(out)
        if ckpt is not None and ckpt.step >= step:
            return ckpt
        if proc.poll() is not None:
            raise AssertionError(f"trainer ended early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("no checkpoint in time")


def test_kill_9_then_resume_reaches_the_same_step_count(tt, small_folder, corpus, tmp_path):
    args = tt.args(small_folder, corpus, tmp_path, "--max-steps", "6", "--checkpoint-every", "1",
                      "--eval-every", "0")
    proc = subprocess.Popen(tt.cmd("pretrain", *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=tt.repo, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _wait_for_checkpoint(tmp_path, proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = latest_checkpoint(tmp_path).step
    assert 2 <= killed_at < 6
    code, events, err = tt.run("pretrain", ["--config", str(tmp_path / "config.json"), "--resume"])
    assert code == 0, err[-2000:]
    start = events[0]
    assert start["start_step"] == killed_at and start["resumed_from"]
    assert events[-1]["event"] == "done" and events[-1]["step"] == 6
    assert next(e["step"] for e in events if e["event"] == "step") == killed_at + 1
    # bit-identical to a run of the same length that was never interrupted
    code, straight, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path / "straight", "--max-steps", "6",
                                                     "--checkpoint-every", "1", "--eval-every", "0"))
    assert code == 0, err[-2000:]
    assert straight[-1]["weight_digests"] == events[-1]["weight_digests"]


def test_decoding_in_processes_trains_the_same_weights_as_decoding_in_the_loop(tt, small_folder, corpus, tmp_path):
    runs = {}
    for name, extra in (("loop", ()), ("processes", ("--decode-in", "processes", "--num-workers", "2"))):
        code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path / name, "--max-steps", "3",
                                                       "--eval-every", "3", "--checkpoint-every", "3", *extra))
        assert code == 0, err[-2000:]
        assert events[0]["config"]["decode_in"] == ("processes" if extra else "threads")
        evaluation = next({k: v for k, v in e.items() if k != "time"} for e in events if e["event"] == "eval")
        runs[name] = (events[-1]["weight_digests"], evaluation)
    assert runs["processes"] == runs["loop"]  # the validation images are decoded the same way too
    assert runs["loop"][1]["n_val"] == 8


def test_sigterm_cancels_with_a_checkpoint(tt, small_folder, corpus, tmp_path):
    args = tt.args(small_folder, corpus, tmp_path, "--max-steps", "500", "--checkpoint-every", "1000",
                      "--eval-every", "0")
    proc = subprocess.Popen(tt.cmd("pretrain", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tt.repo, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for line in proc.stdout:
        if '"event":"step"' in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    done = json.loads(out.strip().splitlines()[-1])
    assert done["event"] == "done" and done["status"] == "cancelled" and done["reason"] == "SIGTERM"
    assert "cancelled" not in done  # the status says it
    assert latest_checkpoint(tmp_path).step == done["step"] < 500


def test_nan_loss_stops_with_an_error_event_naming_the_step(tt, small_folder, corpus, tmp_path):
    code, events, _ = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path, "--max-steps", "8",
                                                         "--lr", "1e30", "--warmup-steps", "0",
                                                         "--eval-every", "0"))
    assert code == 3
    error = events[-1]
    assert error["event"] == "error" and "step" in error["message"] and error["step"] is not None


@pytest.mark.parametrize("problem", ["missing", "empty_class", "no_corpus"])
def test_bad_data_gives_one_clear_error_event(tt, small_folder, corpus, tmp_path, problem):
    images = str(small_folder)
    extra = []
    if problem == "missing":
        images = str(tmp_path / "nowhere")
    elif problem == "empty_class":
        (tmp_path / "data" / "NORMAL").mkdir(parents=True)
        (tmp_path / "data" / "PNEUMONIA").mkdir()
        images = str(tmp_path / "data")
    args = ["--images", images, "--max-steps", "1", "--out-dir", str(tmp_path / "out"), *extra]
    if problem != "no_corpus":
        args += ["--corpus", str(corpus)]
    code, events, err = tt.run("pretrain", args)
    assert code == 2
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1
    message = errors[0]["message"]
    assert {"missing": "does not exist", "empty_class": "holds no images", "no_corpus": "corpus"}[problem] in message
    assert "Traceback" not in err


def test_unreadable_images_are_skipped_and_counted(tt, small_folder, corpus, tmp_path):
    data = tmp_path / "data"
    for cls in ("NORMAL", "PNEUMONIA"):
        (data / cls).mkdir(parents=True)
        for f in sorted((small_folder / cls).iterdir()):
            (data / cls / f.name).symlink_to(f.resolve())
    (data / "NORMAL" / "broken.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "PNEUMONIA" / "empty.png").write_bytes(b"")
    code, events, err = tt.run("pretrain", tt.args(data, corpus, tmp_path / "out", "--max-steps", "10",
                                                           "--val-fraction", "0", "--eval-every", "0",
                                                           "--batch-size", "8"))
    assert code == 0, err[-2000:]
    done = events[-1]
    assert done["skipped_images"] == 2
    assert any("broken.jpeg" in m for m in done["skipped_examples"])


def test_disk_full_while_checkpointing_is_a_clear_error(tt, small_folder, corpus, tmp_path):
    import resource

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    code, events, err = tt.run("pretrain", tt.args(small_folder, corpus, tmp_path, "--max-steps", "2",
                                                           "--checkpoint-every", "1", "--eval-every", "0"),
                                    preexec_fn=limit_file_size)
    assert code == 2, err[-2000:]
    error = events[-1]
    assert error["event"] == "error" and "checkpoint" in error["message"] and "disk" in error["message"]
    assert latest_checkpoint(tmp_path) is None


@pytest.mark.parametrize("text_train", ["partial", "full", "frozen"])
def test_torchrun_two_cpu_processes_end_with_identical_weights(tt, small_folder, corpus, tmp_path, text_train):
    args = tt.args(small_folder, corpus, tmp_path, "--max-steps", "3", "--eval-every", "0",
                   "--checkpoint-every", "3", "--batch-size", "2", "--text-train", text_train)
    code, events, err = tt.torchrun("pretrain", args)
    assert code == 0, err[-3000:]
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2  # only rank 0 writes events
    # partial and frozen run from the per-sentence cache of the frozen text layers; full has none to cache
    assert (starts[0]["text_cache_mb"] > 0) == (text_train != "full")
    done = events[-1]
    assert done["event"] == "done" and done["step"] == 3
    digests = done["weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]


@pytest.mark.parametrize("loss", ["infonce", "medflip"])
def test_paired_csv_mode(tt, small_folder, corpus, tmp_path, loss):
    from medflip_core.data.labelled_sentences import labelled_sentences
    from medflip_core.labeler.labels import LABEL_INDEX

    sentences, labels = labelled_sentences(corpus)
    normal = [s for s, v in zip(sentences, labels, strict=True) if v[LABEL_INDEX["No Finding"]] == 1][:16]
    pneumonia = [s for s, v in zip(sentences, labels, strict=True) if v[LABEL_INDEX["Pneumonia"]] == 1][:16]
    rows = ["image,report"]
    for cls, texts in (("NORMAL", normal), ("PNEUMONIA", pneumonia)):
        for f, text in zip(sorted((small_folder / cls).iterdir()), texts, strict=False):
            rows.append(f'{cls}/{f.name},"{text.replace(chr(34), "")}"')
    csv_path = small_folder / f"pairs-{loss}.csv"
    csv_path.write_text("\n".join(rows))
    code, events, err = tt.run("pretrain", ["--pairs-csv", str(csv_path), "--loss", loss, "--max-steps", "2",
                                            "--batch-size", "4", "--image-size", "112", "--val-fraction", "0.25",
                                            "--eval-every", "2", "--max-val-images", "8",
                                            "--out-dir", str(tmp_path)])
    assert code == 0, err[-2000:]
    assert events[0]["n_train"] + events[0]["n_val"] == len(rows) - 1
    assert events[-1]["event"] == "done" and events[-1]["step"] == 2
    assert any(e["event"] == "eval" for e in events)


def test_progress_bar_on_a_terminal_only(tt, small_folder, corpus, tmp_path):
    import os
    import pty

    master, slave = pty.openpty()
    args = tt.args(small_folder, corpus, tmp_path, "--max-steps", "2", "--eval-every", "0")
    proc = subprocess.Popen(tt.cmd("pretrain", *args), stdout=subprocess.PIPE, stderr=slave, cwd=tt.repo,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    os.close(slave)
    out, _ = proc.communicate(timeout=300)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    tty_text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "step 2/2" in tty_text and "img/s" in tty_text
    assert "step 2/2" not in out.decode()  # stdout stays pure JSON lines
