"""Confine the benchmark, and every process it starts, to chosen CPU cores.

Why a cpuset and not ``taskset``: ONNX Runtime pins its intra-op threads to cores of its own
choosing and so escapes a process's affinity mask; a cpuset cgroup binds every thread of
every process in it, whatever they ask for. Inside one, ONNX Runtime's own pinning fails
(it logs ``pthread_setaffinity_np failed``), so the thread counts are set explicitly by the
caller. Where no cpuset can be made (no cgroup file system, not root), the affinity mask is
the fallback, and the result says which one holds.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_V1_CPUSET = Path("/sys/fs/cgroup/cpuset")
CGROUP_V2 = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Confinement:
    kind: str          # "cpuset (cgroup v1)", "cpuset (cgroup v2)" or "affinity"
    cpus: str          # as the kernel writes a CPU list: "0", "0-1"
    group: Path | None  # the cgroup made for it, removed by ``release``

    def describe(self) -> str:
        return f"{self.kind}, CPU {self.cpus}"


def _cpus(cpus: set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def _join(group: Path, cpus: str, mems_from: Path | None) -> None:
    group.mkdir(exist_ok=True)
    (group / "cpuset.cpus").write_text(cpus)
    if mems_from is not None:  # v1 needs the memory nodes too before a task may join
        (group / "cpuset.mems").write_text(mems_from.read_text().strip() or "0")
    (group / "cgroup.procs").write_text(str(os.getpid()))


def confine(cpus: set[int]) -> Confinement:
    """Move this process into a new cpuset holding ``cpus``; its future children follow."""
    name = f"edge-bench-{os.getpid()}"
    listed = _cpus(cpus)
    with contextlib.suppress(OSError):
        if (CGROUP_V1_CPUSET / "cpuset.cpus").is_file():
            group = CGROUP_V1_CPUSET / name
            _join(group, listed, CGROUP_V1_CPUSET / "cpuset.mems")
            return Confinement("cpuset (cgroup v1)", listed, group)
    with contextlib.suppress(OSError):
        controllers = (CGROUP_V2 / "cgroup.controllers").read_text().split()
        if "cpuset" in controllers:
            (CGROUP_V2 / "cgroup.subtree_control").write_text("+cpuset")
            group = CGROUP_V2 / name
            _join(group, listed, None)
            return Confinement("cpuset (cgroup v2)", listed, group)
    os.sched_setaffinity(0, cpus)
    return Confinement("affinity", listed, None)


def release(confinement: Confinement) -> None:
    """Back to the root group, and the group removed (once its processes have ended)."""
    if confinement.group is None:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
        return
    with contextlib.suppress(OSError):
        (confinement.group.parent / "cgroup.procs").write_text(str(os.getpid()))
        confinement.group.rmdir()

