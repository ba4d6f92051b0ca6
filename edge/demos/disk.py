"""A real, small filesystem to fill and free: a tmpfs, for fault tests and the drill.

Mounting needs root (CI runs as root). What fills it is one file, so freeing is deleting it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.core.errors import EdgeError


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        """Write until the disk says no space is left."""
        descriptor = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 16, 1 << 12, 1 << 9, 1):
                try:
                    while True:
                        os.write(descriptor, bytes(size))
                except OSError:
                    continue
        finally:
            os.close(descriptor)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def available(self) -> int:
        return shutil.disk_usage(self.path).free


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def small_disk(folder: Path, size_kb: int = 1024) -> Iterator[SmallDisk]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755",
                              "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        raise EdgeError(f"cannot mount a tmpfs on {folder}: {mounted.stderr.strip()}",
                        "run as root")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
