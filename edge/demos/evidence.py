"""Evidence for the identity threshold: how similar the same face stays, how close strangers get.

Genuine pairs: the astronaut and the cameraman against flipped, rotated, darkened,
brightened, shrunk, blurred and JPEG-damaged copies of themselves, and each of 40
lfw_subset faces against its mirror image and a darkened copy. Impostor pairs: every pair
of distinct lfw_subset faces (low-resolution and upscaled, which makes them look alike:
a pessimistic case). Used by ``tools/vision_report.py``, the demo clips and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.demos import samples
from edge.vision.identity import normalise
from edge.vision.loader import VisionModels


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    warp = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, warp, (width, height), borderMode=cv2.BORDER_REPLICATE)


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR))


VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mirror": lambda i: np.ascontiguousarray(i[:, ::-1]),
    "rotate +15": lambda i: rotate(i, 15),
    "rotate -15": lambda i: rotate(i, -15),
    "rotate +30": lambda i: rotate(i, 30),
    "dark x0.5": lambda i: brightness(i, 0.5),
    "bright x1.4": lambda i: brightness(i, 1.4),
    "half size": lambda i: cv2.resize(i, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    "blur": lambda i: cv2.GaussianBlur(i, (7, 7), 2),
    "jpeg q30": lambda i: jpeg(i, 30),
}


@dataclass
class IdentityEvidence:
    per_variant: dict[str, dict[str, float]]  # photo -> variant -> similarity
    genuine: np.ndarray            # cosine similarity of same-face pairs
    impostor: np.ndarray           # ... of different-face pairs
    genuine_distance: np.ndarray   # dlib's own measure: Euclidean distance, same-face pairs
    impostor_distance: np.ndarray

    def rates(self, threshold: float) -> tuple[float, float]:
        """(false accept rate, false reject rate) at cosine ``threshold``."""
        return (float((self.impostor >= threshold).mean()),
                float((self.genuine < threshold).mean()))

    def distance_rates(self, limit: float = 0.6) -> tuple[float, float]:
        """(false accept rate, false reject rate) with dlib's rule: the same person when the
        Euclidean distance is below ``limit`` (0.6 in dlib's documentation)."""
        return (float((self.impostor_distance < limit).mean()),
                float((self.genuine_distance >= limit).mean()))


def _single(models: VisionModels, image: np.ndarray) -> np.ndarray | None:
    """The raw descriptor of the one face in ``image``; None unless exactly one."""
    faces = models.describe(image)
    return faces[0][1] if len(faces) == 1 else None


def _pair(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(cosine similarity, Euclidean distance) of two raw descriptors."""
    return (float(normalise(reference) @ normalise(other)),
            float(np.linalg.norm(reference - other)))


def collect(models: VisionModels, lfw_genuine: int = 40) -> IdentityEvidence:
    per_variant: dict[str, dict[str, float]] = {}
    genuine: list[tuple[float, float]] = []
    for name, photo in (("astronaut", samples.astronaut()), ("cameraman", samples.cameraman())):
        reference = _single(models, photo)
        assert reference is not None, f"{name}: expected one face"
        per_variant[name] = {}
        for variant, change in VARIANTS.items():
            other = _single(models, change(photo))
            if other is not None:
                genuine.append(_pair(reference, other))
                per_variant[name][variant] = genuine[-1][0]
    strangers = []
    for index, face in enumerate(samples.lfw_faces(100)):
        tile = samples.face_tile(face, 100)
        reference = _single(models, tile)
        if reference is None:
            continue
        strangers.append(reference)
        if index < lfw_genuine:
            for change in (VARIANTS["mirror"], lambda i: brightness(i, 0.7)):
                other = _single(models, change(tile))
                if other is not None:
                    genuine.append(_pair(reference, other))
    raw = np.asarray(strangers)
    upper = np.triu_indices(len(strangers), 1)
    cosine = (normalise(raw) @ normalise(raw).T)[upper]
    distance = np.linalg.norm(raw[:, None, :] - raw[None, :, :], axis=-1)[upper]
    pairs = np.asarray(genuine)
    return IdentityEvidence(per_variant, pairs[:, 0], cosine, pairs[:, 1], distance)


@dataclass
class RecallResult:
    side: int
    found: int
    total: int
    false_on_faces: int  # extra boxes in frames of faces
    false_on_non_faces: int  # boxes in frames of lfw_subset's 100 non-face patches

    @property
    def recall(self) -> float:
        return self.found / self.total


def tiled_frames(tiles: np.ndarray, side: int, width: int = 640,
                 height: int = 480) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """640x480 grey frames holding the tiles at ``side`` px on a grid; and their true boxes."""
    cell = 2 * side
    cols, rows = width // cell, height // cell
    frames, truths = [], []
    for start in range(0, len(tiles), cols * rows):
        canvas = np.full((height, width), 128, np.uint8)
        boxes = []
        for k, tile in enumerate(tiles[start:start + cols * rows]):
            row, col = divmod(k, cols)
            x, y = col * cell + side // 2, row * cell + side // 2
            canvas[y:y + side, x:x + side] = cv2.resize(tile, (side, side),
                                                        interpolation=cv2.INTER_CUBIC)
            boxes.append((x, y, x + side, y + side))
        frames.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
        truths.append(np.asarray(boxes, np.float32))
    return frames, truths


def detection_recall(models: VisionModels, side: int) -> RecallResult:
    """Recall of the detector on lfw_subset's 100 faces shown at ``side`` pixels.

    lfw_subset's faces are tight 25x25 crops (brows to chin, no hair or context), a hard
    case for RetinaFace, which was trained on whole heads: a lower bound for real cameras.
    A face counts as found when a detection overlaps it with IoU > 0.3 (its box is a
    whole-head box, larger than the tight crop).
    """
    from skimage import data

    from edge.vision.boxes import iou_matrix

    found = extra = 0
    frames, truths = tiled_frames(samples.lfw_faces(100), side)
    for frame, truth in zip(frames, truths):
        detections = models.detector.detect([frame])[0]
        if len(detections):
            overlap = iou_matrix(truth, detections.boxes)
            found += int((overlap.max(axis=1) > 0.3).sum())
            extra += int((overlap.max(axis=0) <= 0.3).sum())
    non_faces = np.clip(np.round(data.lfw_subset()[100:] * 255), 0, 255).astype(np.uint8)
    frames, _ = tiled_frames(non_faces, side)
    false_non_faces = sum(len(models.detector.detect([frame])[0]) for frame in frames)
    return RecallResult(side, found, 100, extra, false_non_faces)
