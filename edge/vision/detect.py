"""RetinaFace: prior boxes, box and landmark decoding, threshold, NMS.

Every frame of a batch is letterboxed to the same input size (``edge.vision.preprocess``),
so one engine call serves the whole batch and a detection maps back to the frame by a
single division.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from edge.core.manifest import InputSpec
from edge.core.records import Detections
from edge.inference.base import Engine
from edge.vision.boxes import nms
from edge.vision.preprocess import Letterbox, frames_batch, pad_colour

STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
PRE_NMS_TOP_K = 5000
MAX_FACES = 750


@lru_cache(maxsize=8)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """Priors (A, 4) as (cx, cy, w, h) normalised to the input size, in the network's order:
    stride by stride, row by row, column by column, size by size."""
    parts = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) * step / width,
                            (ys.ravel() + 0.5) * step / height], axis=1)
        for_sizes = [np.column_stack([centres, np.full(len(centres), s / width),
                                      np.full(len(centres), s / height)]) for s in sizes]
        # interleave sizes per position, as the network's anchors are laid out
        parts.append(np.stack(for_sizes, axis=1).reshape(-1, 4))
    priors = np.concatenate(parts).astype(np.float32)
    priors.setflags(write=False)
    return priors


def decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(..., A, 4) offsets -> (..., A, 4) x1, y1, x2, y2 normalised to the input size."""
    centre = priors[..., :2] + loc[..., :2] * VARIANCES[0] * priors[..., 2:]
    size = priors[..., 2:] * np.exp(loc[..., 2:] * VARIANCES[1])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def decode_landmarks(raw: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(..., A, 10) offsets -> (..., A, 5, 2) points normalised to the input size."""
    points = raw.reshape(*raw.shape[:-1], 5, 2)
    return priors[..., None, :2] + points * VARIANCES[0] * priors[..., None, 2:]


class RetinaFaceDetector:
    """Batch face detector on any Engine that runs the RetinaFace graph."""

    def __init__(self, engine: Engine, spec: InputSpec, *, input_width: int = 640,
                 input_height: int = 480, score_threshold: float = 0.5, nms_iou: float = 0.4,
                 min_face_px: int = 20) -> None:
        self.engine = engine
        self.spec = spec
        self.input_width, self.input_height = input_width, input_height
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.min_face_px = min_face_px

    def preprocess(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        return frames_batch(frames, self.spec, self.input_width, self.input_height)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each BGR frame (one Detections per frame, same order)."""
        if not frames:
            return []
        batch, boxes = self.preprocess(frames)
        return self._run(batch, boxes, [frame.shape[:2] for frame in frames])

    def detect_regions(self, frame: np.ndarray, regions: np.ndarray,
                       side: int) -> list[Detections]:
        """Faces inside square regions of one BGR frame (rows of x1, y1, x2, y2), each
        region scaled to ``side`` x ``side`` and all of them in one engine call: the
        detector where tracked faces should be, at a fraction of a whole frame's cost.
        A region may reach past the frame (padded with the mean colour). One Detections
        per region, in frame coordinates."""
        if len(regions) == 0:
            return []
        fill = pad_colour(self.spec)
        frame_h, frame_w = frame.shape[:2]
        crops, corners = [], []
        colour = np.clip(np.round(fill), 0, 255).astype(np.uint8)
        for x1, y1, x2, y2 in np.round(regions).astype(int):
            x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
            crop = np.empty((y2 - y1, x2 - x1, 3), np.uint8)
            crop[...] = colour  # what lies past the frame's edge: the mean colour
            left, top = max(0, x1), max(0, y1)
            right, bottom = min(frame_w, x2), min(frame_h, y2)
            if right > left and bottom > top:
                crop[top - y1:bottom - y1, left - x1:right - x1] = frame[top:bottom, left:right]
            shrink = crop.shape[0] > side
            crops.append(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA
                                    if shrink else cv2.INTER_LINEAR))
            corners.append((x1, y1, x2 - x1, y2 - y1))
        batch, _ = frames_batch(crops, self.spec, side, side)
        found = self._run(batch, [Letterbox(side / max(w, 1)) for _x, _y, w, _h in corners],
                          [(h, w) for _x, _y, w, h in corners], (side, side))
        placed = []
        for detections, (x, y, _w, _h) in zip(found, corners):
            boxes = detections.boxes + np.array([x, y, x, y], np.float32)
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, frame_w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, frame_h)
            placed.append(Detections(boxes, detections.scores,
                                     detections.landmarks + np.array([x, y], np.float32)))
        return placed

    def _run(self, batch: np.ndarray, boxes: Sequence[Letterbox],
             shapes: Sequence[tuple[int, ...]], size: tuple[int, int] | None = None
             ) -> list[Detections]:
        """The engine on a prepared batch; ``size``: its (width, height), if not the
        detector's own input size."""
        width, height = size or (self.input_width, self.input_height)
        out = self.engine.run_batched({self.spec.name: batch}, ["loc", "conf", "landmarks"])
        priors = prior_boxes(height, width)
        return [self._postprocess(out["loc"][i], out["conf"][i, :, 1], out["landmarks"][i],
                                  priors, boxes[i], shapes[i], (width, height))
                for i in range(len(boxes))]

    def _postprocess(self, loc: np.ndarray, scores: np.ndarray, raw_landmarks: np.ndarray,
                     priors: np.ndarray, box: Letterbox, frame_shape: tuple[int, ...],
                     input_size: tuple[int, int]) -> Detections:
        candidates = np.flatnonzero(scores > self.score_threshold)
        if candidates.size == 0:
            return Detections.empty()
        if candidates.size > PRE_NMS_TOP_K:
            candidates = candidates[np.argsort(-scores[candidates])[:PRE_NMS_TOP_K]]
        to_frame = np.array(input_size, np.float32) / box.scale
        boxes = decode_boxes(loc[candidates], priors[candidates]) * np.tile(to_frame, 2)
        points = decode_landmarks(raw_landmarks[candidates], priors[candidates]) * to_frame
        kept = nms(boxes, scores[candidates], self.nms_iou, MAX_FACES)
        boxes, points, kept_scores = boxes[kept], points[kept], scores[candidates][kept]
        frame_h, frame_w = frame_shape
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, frame_w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, frame_h)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        big_enough = sides >= self.min_face_px
        return Detections(boxes[big_enough].astype(np.float32),
                          kept_scores[big_enough].astype(np.float32),
                          points[big_enough].astype(np.float32))
