"""The 128-D descriptor in its own process, so the frame loop never waits for one.

Off by default (``identity.worker_process``). It was built when dlib computed descriptors
itself, at 65-85 ms a face with Python's GIL held. On ONNX Runtime a descriptor takes about
4 ms of CPU, so inline descriptors cost a frame little. Inline, a new face is also known
in the frame it is first seen, and on one core a second process adds only hand-offs. A box
with cores to spare, whose loop must not wait even that long, can still use the worker.
The loop hands it a 150x150 chip and picks the descriptor up a few frames later. If the
worker dies, the service falls back to computing inline.

The worker dies with its parent: a SIGKILLed service (the watchdog, an OOM kill) must not
leave a 75 MB process behind, nor, through it, multiprocessing's resource tracker. On Linux
the kernel sends it SIGKILL when the thread that started it ends (``PR_SET_PDEATHSIG``), so
the worker is started from the service's main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.logs import get_logger
from edge.core.manifest import ModelEntry

log = get_logger(__name__)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies; exit if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("descriptor_worker_unbound", errno=ctypes.get_errno(),
                        effect="it may outlive a killed service")
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


def _serve(models_dir: Path, model: ModelEntry, requests: Any, results: Any,
           parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    from edge.inference import open_engine
    from edge.vision.identity import FaceEncoder

    encoder = FaceEncoder(open_engine(models_dir, model, device="cpu", threads=1), model)
    while True:
        item = requests.get()
        if item is None:
            return
        key, chip = item
        results.put((key, encoder.encode([chip])[0]))


class DescriptorWorker:
    def __init__(self, models_dir: Path, model: ModelEntry, max_pending: int = 32) -> None:
        context = mp.get_context("spawn")  # no fork of a process with threads and models
        self._requests = context.Queue(maxsize=max_pending)
        self._results = context.Queue()
        self._process = context.Process(target=_serve, name="edge-descriptor", daemon=True,
                                        args=(models_dir, model, self._requests,
                                              self._results, os.getpid()))
        self._process.start()
        self.pending = 0

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The worker's process id (for operators' tools and fault tests)."""
        return self._process.pid

    def submit(self, key: Hashable, chip: np.ndarray) -> bool:
        """Queue a chip; False when the worker is busy (try again on a later frame). ``key``
        comes back with its descriptor."""
        try:
            self._requests.put_nowait((key, np.ascontiguousarray(chip)))
        except queue.Full:
            return False
        self.pending += 1
        return True

    def poll(self) -> list[tuple[Any, np.ndarray]]:
        """Descriptors that are ready, without waiting."""
        ready = []
        while True:
            try:
                ready.append(self._results.get_nowait())
            except queue.Empty:
                break
        self.pending -= len(ready)
        return ready

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(queue.Full):
                self._requests.put(None, timeout=1)
            self._process.join(3)
            if self._process.is_alive():
                self._process.terminate()
        # chips still in the pipe to a dead worker must not hold the process at exit
        # (multiprocessing joins a queue's feeder thread then: a hang that ignored SIGTERM)
        self._requests.cancel_join_thread()
        self._requests.close()
        self._results.close()
