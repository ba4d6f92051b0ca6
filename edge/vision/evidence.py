"""Evidence for the identity threshold: how similar the same face stays, how close strangers get.

Genuine pairs: the astronaut and the cameraman against flipped, rotated, darkened,
brightened, shrunk, blurred and JPEG-damaged copies of themselves, and each of 40
lfw_subset faces against its mirror image and a darkened copy. Impostor pairs: every pair
of distinct lfw_subset faces (low-resolution and upscaled, which makes them look alike:
a pessimistic case). Used by ``tools/identity_evidence.py`` and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.vision import samples
from edge.vision.identity import normalise
from edge.vision.pipeline import VisionModels


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    warp = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, warp, (width, height), borderMode=cv2.BORDER_REPLICATE)


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                        cv2.IMREAD_COLOR)


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
    genuine: np.ndarray
    impostor: np.ndarray

    def rates(self, threshold: float) -> tuple[float, float]:
        """(false accept rate, false reject rate) at ``threshold``."""
        return (float((self.impostor >= threshold).mean()),
                float((self.genuine < threshold).mean()))


def _single(models: VisionModels, image: np.ndarray) -> np.ndarray | None:
    faces = models.describe(image)
    return normalise(faces[0][1]) if len(faces) == 1 else None


def collect(models: VisionModels, lfw_genuine: int = 40) -> IdentityEvidence:
    per_variant: dict[str, dict[str, float]] = {}
    genuine: list[float] = []
    for name, photo in (("astronaut", samples.astronaut()), ("cameraman", samples.cameraman())):
        reference = _single(models, photo)
        assert reference is not None, f"{name}: expected one face"
        per_variant[name] = {}
        for variant, change in VARIANTS.items():
            other = _single(models, change(photo))
            if other is not None:
                per_variant[name][variant] = float(reference @ other)
                genuine.append(per_variant[name][variant])
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
                    genuine.append(float(reference @ other))
    matrix = np.asarray(strangers) @ np.asarray(strangers).T
    impostor = matrix[np.triu_indices(len(strangers), 1)]
    return IdentityEvidence(per_variant, np.asarray(genuine), impostor)
