from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edge.demos import samples
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.loader import VisionModels


def test_worker_gives_the_same_descriptors_as_inline(vision_models: VisionModels) -> None:
    chips = [vision_models.describe(photo)[0][0].chip
             for photo in (samples.astronaut(), samples.cameraman())]
    worker = DescriptorWorker(vision_models.models_dir, vision_models.descriptor_model)
    try:
        assert worker.submit(7, chips[0]) and worker.submit(8, chips[1])
        results: dict[int, np.ndarray] = {}
        deadline = time.monotonic() + 60  # the worker loads its model first
        while len(results) < 2 and time.monotonic() < deadline:
            results.update(worker.poll())
            time.sleep(0.02)
        assert set(results) == {7, 8} and worker.pending == 0
        inline = vision_models.encoder.encode(chips)
        np.testing.assert_allclose(results[7], inline[0], atol=1e-6)
        np.testing.assert_allclose(results[8], inline[1], atol=1e-6)
    finally:
        worker.close()
    assert not worker.alive


HOLDER = """
import sys, time
from pathlib import Path
from edge.core.manifest import load_manifest
from edge.vision.descriptor_worker import DescriptorWorker
if __name__ == "__main__":
    models = Path(sys.argv[1])
    worker = DescriptorWorker(models, load_manifest(models).models[sys.argv[2]])
    print("ready", flush=True)
    time.sleep(300)
"""


def children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_worker_dies_with_a_killed_parent(tmp_path: Path,
                                              vision_models: VisionModels) -> None:
    """SIGKILL of the service (the watchdog, the OOM killer) leaves no worker and no
    multiprocessing resource tracker behind: both were orphaned for 20 minutes and more."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), str(vision_models.models_dir),
                               vision_models.descriptor_model.name],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while len(children(holder.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        spawned = children(holder.pid)
        assert len(spawned) == 2  # the worker and the resource tracker: positive control
        holder.kill()
        holder.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in spawned) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in spawned)
    finally:
        if holder.poll() is None:
            holder.kill()
