"""Real face photos that ship inside registry packages (scikit-image), as BGR frames.

One place for them because the model self-check, the demo, the tests and the benchmark
all need the same faces. No hub download: the files are inside the scikit-image wheel.
"""

from __future__ import annotations

import cv2
import numpy as np


def astronaut() -> np.ndarray:
    """Eileen Collins (NASA, public domain): one smiling face, 512x512."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def cameraman() -> np.ndarray:
    """The classic 'camera' photo: one face in three-quarter view, 512x512 grey."""
    from skimage import data

    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


def lfw_faces(count: int = 100) -> np.ndarray:
    """The first ``count`` faces of scikit-image's lfw_subset: (count, 25, 25) uint8 grey."""
    from skimage import data

    faces = data.lfw_subset()[: min(count, 100)]
    return np.clip(np.round(faces * 255), 0, 255).astype(np.uint8)


def face_tile(face: np.ndarray, side: int, background: int = 128) -> np.ndarray:
    """An lfw face scaled to ``side`` pixels on a plain square twice that size (BGR)."""
    scaled = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    tile = np.full((2 * side, 2 * side), background, np.uint8)
    tile[side // 2: side // 2 + side, side // 2: side // 2 + side] = scaled
    return cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int, side: int) -> None:
    """Paste ``image`` scaled to side x side with its top-left corner at (x, y)."""
    canvas[y:y + side, x:x + side] = cv2.resize(image, (side, side),
                                                interpolation=cv2.INTER_AREA)


def group_scene(width: int = 640, height: int = 480) -> np.ndarray:
    """A 640x480 frame with the astronaut, the cameraman and one stranger from lfw_subset."""
    canvas = np.full((height, width, 3), 90, np.uint8)
    paste(canvas, astronaut()[0:300, 90:390], 10, 60, 260)
    paste(canvas, cameraman()[40:290, 110:360], 280, 90, 220)
    paste(canvas, face_tile(lfw_faces(1)[0], 60), 505, 150, 120)
    return canvas
