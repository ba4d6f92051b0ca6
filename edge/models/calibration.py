"""INT8 calibration data: batches of real images, preprocessed exactly as in service.

The preprocessing is the stages' own (``edge.vision.preprocess.model_batch``), so a model
is calibrated on what it will see. ``edge.models.quantize`` feeds it to ONNX Runtime's
static quantization, which writes the Q/DQ model both back ends run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.core.errors import EdgeError
from edge.core.manifest import InputSpec
from edge.vision.preprocess import model_batch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def calibration_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise EdgeError(f"{folder}: no such calibration folder",
                        "give a folder of face crops (expression) or frames (detector)")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise EdgeError(f"{folder}: holds no images (png, jpg, bmp, webp)")
    return images


class CalibrationBatches:
    """Full batches of ``batch`` images from the first ``limit`` in the folder; a last
    partial batch is dropped (a model's input may have a fixed batch size), and at least
    one full batch is required."""

    def __init__(self, folder: Path, spec: InputSpec, batch: int, width: int,
                 height: int, *, limit: int | None = None) -> None:
        self.images = calibration_images(folder)[:limit]
        if len(self.images) < batch:
            raise EdgeError(f"{folder}: {len(self.images)} images, fewer than one batch of "
                            f"{batch}", "add images")
        self.spec, self.batch, self.width, self.height = spec, batch, width, height

    def __len__(self) -> int:
        return len(self.images) // self.batch

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self) * self.batch, self.batch):
            images = []
            for path in self.images[start:start + self.batch]:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise EdgeError(f"{path}: not a readable image")
                images.append(image)
            yield np.ascontiguousarray(model_batch(images, self.spec, self.width, self.height))
