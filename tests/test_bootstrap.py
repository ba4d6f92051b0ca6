"""The set-up step on a machine that lacks a system package, run as an ordinary user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534
PYTHON_WITHOUT_VENV = """#!/bin/sh
# Debian's python3 without the python3-venv package: recent enough, but no venv/ensurepip
case "$*" in
  *version_info*) exit 0 ;;
  *"import venv"*) exit 1 ;;
esac
exit 3
"""


@pytest.fixture
def world_readable_copy() -> Iterator[Path]:
    """bootstrap.sh in a folder that the unprivileged user can read."""
    folder = Path(tempfile.mkdtemp(prefix="edge-bootstrap-"))
    try:
        (folder / "tools").mkdir()
        shutil.copy(REPO / "tools" / "bootstrap.sh", folder / "tools" / "bootstrap.sh")
        fake = folder / "python3"
        fake.write_text(PYTHON_WITHOUT_VENV)
        for path in (folder, folder / "tools"):
            path.chmod(0o755)
        fake.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the script as another user")
def test_non_root_gets_the_exact_install_line_and_a_stop(world_readable_copy: Path) -> None:
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "env", f"PYTHON={world_readable_copy / 'python3'}", "bash",
         str(world_readable_copy / "tools" / "bootstrap.sh")],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "    sudo apt-get install -y python3-venv" in done.stderr.splitlines()
    assert not (world_readable_copy / ".venv").exists()  # stopped before doing anything


@pytest.mark.parametrize(("release", "expected"), [
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic",  # JetPack 6.2
     ["cuda-bindings>=12.2,<13", "numpy>=1.26,<2"]),
    ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic",  # JetPack 7.0
     ["cuda-bindings>=13,<14", "numpy>=1.26,<2"]),
])
def test_a_jetson_gets_the_cuda_bindings_of_its_jetpack(tmp_path: Path, release: str,
                                                         expected: list[str]) -> None:
    (tmp_path / "nv_tegra_release").write_text(release + "\n")
    done = subprocess.run(["bash", str(REPO / "tools" / "jetson_packages.sh"),
                           str(tmp_path / "nv_tegra_release")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout.split() == expected


def test_jetpack_5_is_told_to_upgrade(tmp_path: Path) -> None:
    (tmp_path / "nv_tegra_release").write_text(
        "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref\n")
    done = subprocess.run(["bash", str(REPO / "tools" / "jetson_packages.sh"),
                           str(tmp_path / "nv_tegra_release")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "JetPack 6.1 or later" in done.stderr and "onnxruntime" in done.stderr
