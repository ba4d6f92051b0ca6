"""Pixels -> model input, as pure functions of the manifest's ``InputSpec``.

One implementation for every user: the detector and the expression classifier feed their
engines with it, and INT8 calibration (``edge.models.calibration``) prepares its images
with it, so a model is calibrated on exactly what it will see in service.

- A spec without a fixed height and width (RetinaFace, fully convolutional) gets each frame
  letterboxed to the requested input size: scaled to fit, padded at the right and bottom
  with the mean colour (zero after normalisation), so a detection maps back to the frame
  by a single division, with no offset and no rounding drift.
- A spec with a fixed size (the expression model) gets each crop resized to it.
Then the colour order is applied and ``(pixels - mean) * scale`` in the spec's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.core.manifest import InputSpec


@dataclass(frozen=True)
class Letterbox:
    scale: float  # input pixels per frame pixel


def pad_colour(spec: InputSpec) -> list[float]:
    """The mean colour in the frame's BGR order: padding with it becomes zero."""
    return spec.mean[::-1] if spec.colour == "RGB" else list(spec.mean)


def letterbox(frame: np.ndarray, width: int, height: int,
              fill: Sequence[float]) -> tuple[np.ndarray, Letterbox]:
    """Fit ``frame`` into width x height keeping its aspect; pad right and bottom."""
    frame_h, frame_w = frame.shape[:2]
    if (frame_w, frame_h) == (width, height):  # the usual camera case: nothing to do
        return frame, Letterbox(scale=1.0)
    scale = min(width / frame_w, height / frame_h)
    new_w, new_h = min(width, round(frame_w * scale)), min(height, round(frame_h * scale))
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = np.clip(np.round(fill), 0, 255).astype(np.uint8)
    if (new_w, new_h) == (frame_w, frame_h):
        canvas[:new_h, :new_w] = frame
    else:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    # the exact scale of the placed image, per axis, may differ from `scale` by rounding;
    # use the horizontal one (aspect preserved to within one pixel).
    return canvas, Letterbox(scale=new_w / frame_w)


def frames_batch(frames: Sequence[np.ndarray], spec: InputSpec, width: int,
                 height: int) -> tuple[np.ndarray, list[Letterbox]]:
    """BGR frames -> (N, 3, height, width) float32 for a size-free NCHW model, letterboxed."""
    batch = np.empty((len(frames), 3, height, width), np.float32)
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    scale = np.float32(spec.scale)
    fill = pad_colour(spec)
    boxes = []
    for i, frame in enumerate(frames):
        canvas, box = letterbox(frame, width, height, fill)
        if spec.colour == "RGB":
            canvas = canvas[:, :, ::-1]
        # (x - mean) * scale, written straight into the NCHW batch
        np.subtract(canvas.transpose(2, 0, 1), mean, out=batch[i])
        if scale != 1:
            batch[i] *= scale
        boxes.append(box)
    return batch, boxes


def crops_batch(crops: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """BGR crops -> a batch at the spec's fixed size, colour and layout."""
    if spec.width is None or spec.height is None:
        raise ValueError(f"{spec.name}: crops_batch needs a model with a fixed input size")
    width, height = spec.width, spec.height
    images = []
    for crop in crops:
        if crop.shape[:2] != (height, width):
            crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
        if spec.colour == "GRAY":
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)[:, :, None]
        elif spec.colour == "RGB":
            crop = crop[:, :, ::-1]
        images.append(crop)
    batch = (np.stack(images).astype(np.float32) - np.asarray(spec.mean, np.float32)
             ) * np.float32(spec.scale)
    return batch.transpose(0, 3, 1, 2) if spec.layout == "NCHW" else batch


def model_batch(images: Sequence[np.ndarray], spec: InputSpec, width: int,
                height: int) -> np.ndarray:
    """The model's input for BGR images, whichever kind of model the spec describes
    (``width`` and ``height`` apply to a size-free model only)."""
    if spec.width is None or spec.height is None:
        return frames_batch(images, spec, width, height)[0]
    return crops_batch(images, spec)
