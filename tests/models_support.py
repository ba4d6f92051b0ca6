"""A models folder for a test that adds models (engines, quantized copies): the prepared
files linked, not copied (the dlib models alone are 130 MB), and its own manifest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge.core.manifest import MANIFEST_NAME


def linked_models(models_dir: Path, target: Path) -> Path:
    """``target`` holding links to ``models_dir``'s files, a copy of its manifest, and no
    TensorRT timing cache. New files written there stay there."""
    shutil.copytree(models_dir, target, copy_function=os.symlink,
                    ignore=shutil.ignore_patterns(".cache", MANIFEST_NAME))
    shutil.copy(models_dir / MANIFEST_NAME, target / MANIFEST_NAME)
    return target
