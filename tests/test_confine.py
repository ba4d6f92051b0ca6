"""The benchmark's confinement: every process it starts later is held to the chosen core."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import subprocess, sys
from edge.demos.confine import confine, release
confinement = confine({0}) if sys.argv[1] == "confined" else None
child = subprocess.run(["grep", "Cpus_allowed_list", "/proc/self/status"],
                       capture_output=True, text=True).stdout.split()[1]
print(confinement.kind if confinement else "none", child)
if confinement:
    release(confinement)
    print(confinement.group is None or not confinement.group.exists())
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to tell them apart")
def test_a_child_started_after_confinement_stays_on_the_core() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, "confined"], capture_output=True,
                          text=True, timeout=60, check=True)
    first, released = done.stdout.splitlines()[:2]
    kind, child = first.rsplit(" ", 1)
    assert child == "0" and released == "True"
    assert kind.startswith(("cpuset", "affinity"))
    # control: unconfined, a child may use every core
    free = subprocess.run([sys.executable, "-c", PROBE, "free"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert free.stdout.split()[1] != "0"
