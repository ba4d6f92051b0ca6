"""Alignment: the study's eye-angle rotation, then dlib landmarks on a dlib-style box.

1. The eye line from RetinaFace's landmarks gives ``angle = atan2(yR - yL, xR - xL)``; the
   face is warped upright around its box centre into a small canvas (scaled so the face
   is at most ``MAX_FACE_PX`` wide: landmarks and the 150 px chip need no more).
2. dlib's landmark models were trained on boxes from dlib's HOG detector, which are
   squarer and lower than RetinaFace's. Fitting on a raw RetinaFace box puts the jaw and
   mouth points off by up to 10 px, so the box is mapped to dlib's style first
   (``DLIB_BOX_*``, measured: median over 100 faces from scikit-image's astronaut, camera
   and lfw_subset, each detected by both RetinaFace and dlib's HOG detector).
3. From the landmarks: dlib's aligned 150x150 chip for the descriptor, and a square upright
   crop (box plus margin, as ``fer`` crops) for the expression model.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import dlib
import numpy as np

from edge.core.errors import ModelError
from edge.core.records import AlignedFace, Detections

# dlib-style box from a RetinaFace box of an upright face (fractions of RetinaFace w, h).
DLIB_BOX_WIDTH = 1.10
DLIB_BOX_HEIGHT = 0.865
DLIB_BOX_SHIFT_Y = 0.018
MAX_FACE_PX = 200
MAX_TILT_FOR_BOX_DEG = 30.0  # beyond this the upright box is estimated as if at 30 degrees
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def eye_angle_deg(landmarks: np.ndarray) -> float:
    """The study's rotation: angle of the line from the image-left to the image-right eye."""
    (x_left, y_left), (x_right, y_right) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(y_right - y_left, x_right - x_left))


def upright_size(width: float, height: float, angle_deg: float) -> tuple[float, float]:
    """Size of the upright face whose tilted version has this axis-aligned box.

    A w x h rectangle turned by t has a W x H bounding box with W = w cos t + h sin t and
    H = w sin t + h cos t; solved for w and h.
    """
    t = math.radians(min(abs(angle_deg), MAX_TILT_FOR_BOX_DEG))
    c, s = math.cos(t), math.sin(t)
    det = c * c - s * s
    return (c * width - s * height) / det, (c * height - s * width) / det


def dlib_style_box(width: float, height: float) -> tuple[float, float, float]:
    """(centre y shift, width, height) of dlib's box for an upright RetinaFace box."""
    return DLIB_BOX_SHIFT_Y * height, DLIB_BOX_WIDTH * width, DLIB_BOX_HEIGHT * height


class FaceAligner:
    """Rotate each detected face upright, fit dlib landmarks, cut the chip and the crop."""

    def __init__(self, shape_predictor: Path, *, crop_size: int = 64,
                 crop_margin: float = 0.1) -> None:
        if not shape_predictor.is_file():
            raise ModelError(f"{shape_predictor}: landmark model missing",
                             "run `edge models prepare`")
        try:
            self.predictor = dlib.shape_predictor(str(shape_predictor))
        except RuntimeError as exc:  # dlib's deserialisation error: not a landmark model
            raise ModelError(f"{shape_predictor}: dlib cannot load it ({str(exc)[:120]})",
                             "run `edge models prepare --force`") from None
        self.crop_size = crop_size
        self.crop_margin = crop_margin

    def align(self, frame: np.ndarray, detections: Detections) -> list[AlignedFace]:
        """Every detected face, in detection order (enrolment, tools and tests)."""
        return [self.align_face(frame, detections.boxes[i], detections.landmarks[i])
                for i in range(len(detections))]

    def align_face(self, frame: np.ndarray, box: np.ndarray,
                   landmarks: np.ndarray) -> AlignedFace:
        """One face from its detector box (x1, y1, x2, y2) and 5 points."""
        canvas, warp, angle, (cx, cy, box_w, box_h) = self._upright(frame, box, landmarks)
        rect = dlib.rectangle(round(cx - box_w / 2), round(cy - box_h / 2),
                              round(cx + box_w / 2), round(cy + box_h / 2))
        rgb = np.ascontiguousarray(canvas[:, :, ::-1])
        shape = self.predictor(rgb, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)[:, :, ::-1]
        crop = self._expression_crop(canvas, cx, cy, max(box_w, box_h))
        back = cv2.invertAffineTransform(warp)
        in_frame = points @ back[:, :2].T + back[:, 2]
        return AlignedFace(angle_deg=angle, landmarks=in_frame,
                           chip=chip, crop=crop)

    def expression_crop(self, frame: np.ndarray, box: np.ndarray,
                        landmarks: np.ndarray) -> np.ndarray:
        """The expression model's crop alone, the same pixels ``align_face`` cuts: it comes
        from the box and the detector's 5 points, so a face that needs no descriptor in this
        frame skips the 68-point fit and the chip (most of the cost of aligning)."""
        canvas, _warp, _angle, (cx, cy, box_w, box_h) = self._upright(frame, box, landmarks)
        return self._expression_crop(canvas, cx, cy, max(box_w, box_h))

    def _upright(self, frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, float, tuple[float, float, float, float]]:
        """The face rotated upright on a canvas twice its size: the canvas, the warp, the
        angle removed, and dlib's style of box on the canvas (centre x, y, width, height)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        angle = eye_angle_deg(landmarks)
        width, height = upright_size(x2 - x1, y2 - y1, angle)
        scale = min(1.0, MAX_FACE_PX / max(width, height, 1.0))
        side = math.ceil(2.0 * max(width, height) * scale)
        centre = ((x1 + x2) / 2, (y1 + y2) / 2)
        # rotate by +angle about the box centre (OpenCV: positive = counter-clockwise on
        # screen), which levels the eyes, then move the centre to the canvas centre
        warp = cv2.getRotationMatrix2D(centre, angle, scale)
        warp[:, 2] += (side / 2 - centre[0], side / 2 - centre[1])
        canvas = cv2.warpAffine(frame, warp, (side, side), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        shift_y, box_w, box_h = (v * scale for v in dlib_style_box(width, height))
        return canvas, warp, angle, (side / 2, side / 2 + shift_y, box_w, box_h)

    def _expression_crop(self, canvas: np.ndarray, cx: float, cy: float,
                         box_side: float) -> np.ndarray:
        half = box_side * (1 + 2 * self.crop_margin) / 2
        x0, y0 = round(cx - half), round(cy - half)
        x1, y1 = round(cx + half), round(cy + half)
        h, w = canvas.shape[:2]
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:  # only with a huge margin setting
            pad = max(-x0, -y0, x1 - w, y1 - h)
            canvas = cv2.copyMakeBorder(canvas, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
        shrink = (x1 - x0) > self.crop_size
        return cv2.resize(canvas[y0:y1, x0:x1], (self.crop_size, self.crop_size),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
