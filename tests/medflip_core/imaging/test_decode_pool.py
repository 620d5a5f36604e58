"""Decoding in worker processes gives the training loader the same pixels as decoding in the process, and a
worker that dies mid-decode costs one retry, not the run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from medflip_core.errors import ImageLoadError
from medflip_core.imaging.decode_pool import DecodePool, decode_for_training
from medflip_core.imaging.preprocess import PreprocessConfig

PRE = PreprocessConfig(image_size=64)


@pytest.fixture(scope="module")
def pool():
    decoder = DecodePool(2)
    yield decoder
    decoder.close()


@pytest.fixture(scope="module")
def files(shared_data) -> list:
    kermany = sorted((shared_data / "cxr-pneumonia-kermany" / "train" / "NORMAL").iterdir())[:2]
    return [*sorted((shared_data / "dicom").glob("*.dcm")), *kermany]


@pytest.mark.parametrize("for_augmentation", [False, True], ids=["model-input", "augmentation-source"])
def test_workers_decode_every_real_file_to_the_same_bits_as_the_process_itself(pool, files, for_augmentation):
    """Every DICOM the project has (JPEG 2000 lossless and lossy, JPEG baseline, MONOCHROME1, DX) and JPEGs."""
    for path in files:
        here = decode_for_training(path, PRE, for_augmentation)
        there = pool.decode(path, PRE, for_augmentation)
        assert there.dtype == here.dtype and np.array_equal(there, here), path.name


def test_an_unreadable_file_gives_the_same_message_from_a_worker(pool, files, tmp_path):
    broken = tmp_path / "truncated.dcm"
    broken.write_bytes(files[0].read_bytes()[:4000])  # a real DICOM cut inside its pixel data
    with pytest.raises(ImageLoadError) as here:
        decode_for_training(broken, PRE, False)
    with pytest.raises(ImageLoadError) as there:
        pool.decode(broken, PRE, False)
    assert str(there.value) == str(here.value)
    assert pool.decode(files[-1], PRE, False).shape == (1, 64, 64)  # and the pool still works


def _kill_workers_for(seconds: float) -> threading.Thread:
    """Kill every worker process this test process has, again and again (an out-of-memory killer)."""
    def run() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    os.kill(child.pid, signal.SIGKILL)
            time.sleep(0.02)
    killer = threading.Thread(target=run)
    killer.start()
    return killer


def test_a_worker_killed_mid_decode_costs_a_retry_and_the_pool_starts_again(shared_data):
    slow = shared_data / "dicom" / "RG1_J2KR.dcm"  # ~1 s of lossless JPEG 2000 decoding: time to be killed in
    expected = decode_for_training(slow, PRE, False)
    decoder = DecodePool(1)
    try:
        decoder.decode(slow, PRE, False)  # the worker is up
        result: dict = {}
        caller = threading.Thread(target=lambda: result.update(image=decoder.decode(slow, PRE, False)))
        caller.start()
        time.sleep(0.2)  # inside the decode
        assert caller.is_alive()
        for child in multiprocessing.active_children():  # this pool's worker (and any other test's)
            os.kill(child.pid, signal.SIGKILL)
        caller.join(timeout=60)
        assert np.array_equal(result["image"], expected)  # decoded again, alone
        assert decoder.crashes == 1
        assert np.array_equal(decoder.decode(slow, PRE, False), expected)  # the new pool serves
    finally:
        decoder.close()


def test_a_file_whose_decoder_dies_every_time_is_skipped_with_a_message(shared_data):
    slow = shared_data / "dicom" / "RG1_J2KR.dcm"
    decoder = DecodePool(1)
    try:
        killer = _kill_workers_for(8.0)  # the pool's worker and the one that retries the file alone both die
        with pytest.raises(ImageLoadError, match=r"RG1_J2KR\.dcm: the decoding process ended while reading this file"):
            decoder.decode(slow, PRE, False)
        killer.join()
        assert decoder.decode(slow, PRE, False).shape == (1, 64, 64)  # the killer is gone: the pool serves again
    finally:
        decoder.close()


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()  # a zombie (State: Z) is not running
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_workers_end_when_the_process_that_started_them_is_killed(shared_data):
    """A trainer killed with SIGKILL cannot shut its pool down: the workers must notice and leave."""
    import subprocess
    import sys

    script = (
        "import multiprocessing, os, signal\n"
        "from medflip_core.imaging.decode_pool import DecodePool\n"
        "from medflip_core.imaging.preprocess import PreprocessConfig\n"
        "pool = DecodePool(2)\n"
        f"pool.decode({str(shared_data / 'dicom' / 'RG1_UNCR.dcm')!r}, PreprocessConfig(image_size=64), False)\n"
        "print(*(child.pid for child in multiprocessing.active_children()), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    pids = [int(pid) for pid in proc.stdout.split()]
    assert len(pids) >= 1
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in pids)


def test_a_pool_needs_a_process():
    with pytest.raises(ValueError, match="at least one process"):
        DecodePool(0)
