"""INT8 calibration data: batches of real images, preprocessed exactly as in service.

Pure NumPy, so the batching is tested without TensorRT; ``build_engine`` wraps it in an
``IInt8EntropyCalibrator2``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.models.manifest import InputSpec
from edge.vision.detect import letterbox

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def calibration_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise EdgeError(f"{folder}: no such calibration folder",
                        "give a folder of face crops (expression) or frames (detector)")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise EdgeError(f"{folder}: holds no images (png, jpg, bmp, webp)")
    return images


def prepare(image: np.ndarray, spec: InputSpec, width: int, height: int) -> np.ndarray:
    """One BGR image -> C x H x W float32 as the model's input (letterboxed if variable)."""
    if spec.height is None or spec.width is None:
        image, _ = letterbox(image, width, height, spec.mean[::-1] if spec.colour == "RGB"
                             else spec.mean)
    else:
        image = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    if spec.colour == "GRAY":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    elif spec.colour == "RGB":
        image = image[:, :, ::-1]
    chw = (image.astype(np.float32) - np.asarray(spec.mean, np.float32)) * np.float32(spec.scale)
    return np.ascontiguousarray(chw.transpose(2, 0, 1))


class CalibrationBatches:
    """Full batches of ``batch`` images; a last partial batch is dropped (TensorRT wants
    fixed-size calibration batches), and at least one full batch is required."""

    def __init__(self, folder: Path, spec: InputSpec, batch: int, width: int,
                 height: int) -> None:
        self.images = calibration_images(folder)
        if len(self.images) < batch:
            raise EdgeError(f"{folder}: {len(self.images)} images, fewer than one batch of "
                            f"{batch}", "add images or lower --calibration-batch")
        self.spec, self.batch, self.width, self.height = spec, batch, width, height

    def __len__(self) -> int:
        return len(self.images) // self.batch

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self) * self.batch, self.batch):
            frames = []
            for path in self.images[start:start + self.batch]:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise EdgeError(f"{path}: not a readable image")
                frames.append(prepare(image, self.spec, self.width, self.height))
            yield np.stack(frames)
