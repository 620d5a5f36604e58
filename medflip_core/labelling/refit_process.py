"""The labelling head's refits in a worker process of their own, shared by the windows of one process.

Why a process: a refit is pure given its `Snapshot` (`job.refit`, ~0.1 s; 0.3-0.8 s when the penalty is chosen again
by cross-validation), but its optimiser runs Python code that holds the GIL. In a thread of the window's process,
every GIL hand-back in the window's thread (each fsync of an answer, each Qt call) then waited for it: during refits,
a key's handler took up to 0.29 s instead of ~20 ms (`medflip bench labelling --think 0`). A spawned worker has a
GIL of its own; the window's worker thread waits on it without the GIL. Spawned, not forked (no inherited threads);
it imports numpy and this package only (no Qt, no torch, no ONNX Runtime).

A worker that dies (the out-of-memory killer) costs one refit's process: that refit runs in the calling thread, as
it did before, and the next one starts a new worker. An app killed with SIGKILL cannot shut the worker down: it ends
itself when its parent has ended (as the image readers' workers do), or it would hold the app's stdout open and
live on.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from medflip_core.labelling.job import Snapshot, refit
from medflip_core.labelling.learner import CurvePoint, Head
from medflip_core.processes import worker_start

_LOCK = threading.Lock()
_POOL: list[ProcessPoolExecutor] = []  # at most one


def _ready() -> bool:
    return True


def _pool() -> ProcessPoolExecutor:
    with _LOCK:
        if _POOL and getattr(_POOL[0], "_broken", False):
            _POOL.pop().shutdown(wait=False, cancel_futures=True)
        if not _POOL:
            _POOL.append(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=worker_start))
        return _POOL[0]


def start() -> Future:
    """Start the worker now (it imports for ~0.5 s), so the first refit does not wait for it."""
    return _pool().submit(_ready)


def refit_in_process(snap: Snapshot) -> tuple[Head, CurvePoint | None]:
    """`job.refit(snap)` in the worker process (call it from a worker thread: it waits for the result)."""
    try:
        return _pool().submit(refit, snap).result()
    except BrokenProcessPool:  # the worker died: this refit here, the next one in a new worker
        return refit(snap)


def close() -> None:
    """Stop the worker (the application quits): a refit running ends first."""
    with _LOCK:
        pools = list(_POOL)
        _POOL.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)
