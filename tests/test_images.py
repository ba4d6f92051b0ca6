from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.core.errors import ImageError
from edge.vision.images import as_bgr_frame, read_image


@pytest.mark.parametrize(("image", "message"), [
    (np.zeros((0, 0, 3), np.uint8), "the image is empty"),
    (np.zeros((1, 1, 3), np.uint8), "1x1 pixels is too small"),
    (np.zeros((100, 100, 3), np.float32), "pixels are float32; expected uint8"),
    (np.zeros((100, 100, 2), np.uint8), "is not an image"),
    (np.zeros((4, 100, 100, 3), np.uint8), "is not an image"),
    ([[1, 2], [3, 4]], "expected a NumPy array"),
])
def test_bad_arrays_are_named(image: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        as_bgr_frame(image, "frame 7")  # type: ignore[arg-type]


def test_grey_and_bgra_become_bgr() -> None:
    assert as_bgr_frame(np.full((40, 50), 9, np.uint8)).shape == (40, 50, 3)
    assert as_bgr_frame(np.full((40, 50, 1), 9, np.uint8)).shape == (40, 50, 3)
    assert as_bgr_frame(np.full((40, 50, 4), 9, np.uint8)).shape == (40, 50, 3)


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "absent.jpg")
    with pytest.raises(ImageError, match="is not a file"):
        read_image(tmp_path)
    empty = tmp_path / "empty.jpg"
    empty.touch()
    with pytest.raises(ImageError, match="the file is empty"):
        read_image(empty)
    corrupt = tmp_path / "corrupt.jpg"
    _, encoded = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))
    corrupt.write_bytes(encoded.tobytes()[:20])
    with pytest.raises(ImageError, match=rf"{corrupt}: not a readable image"):
        read_image(corrupt)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(text)


def test_sixteen_bit_png_is_read(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((40, 40), 65535, np.uint16))
    image = read_image(path)
    assert image.dtype == np.uint8 and image.max() == 255
