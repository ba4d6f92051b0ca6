"""The demo kit's small tmpfs (edge/demos/disk.py), skipped with the reason where a test
cannot mount one (it needs root; CI runs as root)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.demos import disk
from edge.demos.disk import SmallDisk


@contextmanager
def small_disk(folder: Path, size_kb: int = 1024) -> Iterator[SmallDisk]:
    if not disk.can_mount():
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs as root)")
    with disk.small_disk(folder, size_kb) as mounted:
        yield mounted
