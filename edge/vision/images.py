"""Reading and checking images, so a bad input is named clearly before any model sees it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from edge.core.errors import ImageError

MIN_SIDE = 32  # smaller than the detector's smallest prior (16 px) plus context
MAX_PIXELS = 50_000_000  # 50 megapixels: more than any phone photo of one face needs


def as_bgr_frame(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an array and return it as a contiguous HxWx3 uint8 BGR frame.

    Accepts grey (HxW or HxWx1) and BGRA; refuses anything that would silently give
    nonsense: floats, empty arrays, tiny images.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a NumPy array, got {type(image).__name__}")
    if image.size == 0:
        raise ImageError(f"{name}: the image is empty (shape {image.shape})")
    if image.dtype != np.uint8:
        raise ImageError(f"{name}: pixels are {image.dtype}; expected uint8 (0..255)",
                         "convert with (image * 255).astype(np.uint8) if it is 0..1 floats")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ImageError(f"{name}: shape {image.shape} is not an image "
                         "(expected HxW grey, HxWx3 BGR or HxWx4 BGRA)")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(f"{name}: {width}x{height} pixels is too small to hold a face",
                         f"use images of at least {MIN_SIDE}x{MIN_SIDE}")
    return np.ascontiguousarray(image)


def read_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as a BGR frame; ImageError names the file and the problem.

    The size is read from the file's header first (Pillow opens lazily): an image of more
    than ``max_pixels`` is refused before anything is decoded. A 3 MB PNG of 30000 x 30000
    pixels otherwise took 5.5 GB of memory and 16 s to decode.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(f"{path}: is not a file")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: the file is empty")
        try:
            with Image.open(path) as header:  # the header only; nothing is decoded yet
                width, height = header.size
        except Image.DecompressionBombError:  # Pillow's own limit, far above ours
            raise ImageError(f"{path}: far more than the {max_pixels / 1e6:.0f} megapixels "
                             "accepted", "scale it down; a face needs far fewer pixels"
                             ) from None
        data = np.fromfile(path, dtype=np.uint8)
    except PermissionError:
        raise ImageError(f"{path}: cannot be read (permission denied)",
                         "run as a user who may read it, or copy it somewhere readable"
                         ) from None
    except OSError as exc:  # Pillow's decoding errors are OSErrors without an errno
        if isinstance(exc, UnidentifiedImageError) or exc.errno is None:
            raise ImageError(f"{path}: not a readable image (corrupt, or not "
                             "JPEG/PNG/BMP/TIFF/WebP)") from None
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if width * height > max_pixels:
        raise ImageError(f"{path}: {width}x{height} pixels ({width * height / 1e6:.0f} "
                         f"megapixels), more than the {max_pixels / 1e6:.0f} megapixels "
                         "accepted",
                         "scale it down; a face needs far fewer pixels")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{path}: not a readable image (corrupt, or not JPEG/PNG/BMP/TIFF/WebP)")
    if image.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the top byte
        image = np.right_shift(image, 8).astype(np.uint8)
    return as_bgr_frame(image, str(path))
