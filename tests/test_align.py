from __future__ import annotations

import math

import cv2
import dlib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.demos import samples
from edge.vision.align import FaceAligner, dlib_style_box, eye_angle_deg, upright_size
from edge.vision.boxes import iou_matrix
from edge.vision.loader import VisionModels


def test_eye_angle_is_the_studys_formula() -> None:
    points = np.array([[10, 10], [20, 20], [0, 0], [0, 0], [0, 0]], np.float32)
    assert eye_angle_deg(points) == pytest.approx(45.0)
    points[1] = [20, 10]
    assert eye_angle_deg(points) == pytest.approx(0.0)


@given(st.floats(20, 300), st.floats(20, 300), st.floats(-29, 29))
def test_upright_size_inverts_the_bounding_box_of_a_turned_rectangle(w: float, h: float,
                                                                      angle: float) -> None:
    t = math.radians(abs(angle))
    box_w = w * math.cos(t) + h * math.sin(t)
    box_h = w * math.sin(t) + h * math.cos(t)
    assert upright_size(box_w, box_h, angle) == pytest.approx((w, h), rel=1e-6, abs=1e-6)


def _rotate(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    warp = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, warp, (w, h), borderMode=cv2.BORDER_REPLICATE), warp


@pytest.mark.parametrize("degrees", [-15, 15, 30])
def test_landmarks_follow_a_rotated_face(vision_models: VisionModels, degrees: float) -> None:
    photo = samples.astronaut()
    reference = vision_models.aligner.align(photo, vision_models.detector.detect([photo])[0])[0]
    rotated, warp = _rotate(photo, degrees)
    face = vision_models.aligner.align(rotated, vision_models.detector.detect([rotated])[0])[0]
    expected = reference.landmarks @ warp[:2, :2].T + warp[:, 2]
    error = np.linalg.norm(face.landmarks - expected, axis=1)
    assert np.median(error) < 2.0 and error.max() < 8.0
    # the eye angle removed is the original tilt minus the rotation applied
    assert face.angle_deg == pytest.approx(reference.angle_deg - degrees, abs=2.5)


@pytest.mark.parametrize("change", [
    lambda i: np.ascontiguousarray(i[:, ::-1]), lambda i: _rotate(i, 30)[0],
    lambda i: _rotate(i, -30)[0]])
def test_expression_crop_is_upright_whatever_the_tilt(vision_models: VisionModels,
                                                       change) -> None:
    image = change(samples.astronaut())
    face = vision_models.aligner.align(image, vision_models.detector.detect([image])[0])[0]
    assert face.chip.shape == (150, 150, 3)
    assert face.crop.shape == (64, 64, 3)
    probabilities = vision_models.classifier.probabilities([face.crop])[0]
    assert probabilities.argmax() == 0  # happy
    # landmarks fitted on the upright crop: both eyes level after removing the angle
    right_eye_minus_left = face.landmarks[45] - face.landmarks[36]
    tilt = math.degrees(math.atan2(right_eye_minus_left[1], right_eye_minus_left[0]))
    assert tilt == pytest.approx(face.angle_deg, abs=5)


def test_mapped_box_is_closer_to_dlibs_own_box(vision_models: VisionModels) -> None:
    photo = samples.astronaut()
    x1, y1, x2, y2 = vision_models.detector.detect([photo])[0].boxes[0]
    shift, width, height = dlib_style_box(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift
    mapped = np.array([[cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2]])
    hog = dlib.get_frontal_face_detector()(np.ascontiguousarray(photo[:, :, ::-1]), 1)[0]
    dlib_box = np.array([[hog.left(), hog.top(), hog.right(), hog.bottom()]], np.float64)
    raw = np.array([[x1, y1, x2, y2]], np.float64)
    assert iou_matrix(mapped, dlib_box)[0, 0] > iou_matrix(raw, dlib_box)[0, 0]
    assert iou_matrix(mapped, dlib_box)[0, 0] > 0.68


def test_five_point_model_for_commercial_use(models_dir, vision_models) -> None:
    aligner = FaceAligner(models_dir / "shape_predictor_5_face_landmarks.dat")
    photo = samples.astronaut()
    face = aligner.align(photo, vision_models.detector.detect([photo])[0])[0]
    assert face.landmarks.shape == (5, 2)
    descriptor = vision_models.encoder.encode([face.chip])[0]
    reference = vision_models.describe(photo)[0][1]
    cosine = descriptor @ reference / np.linalg.norm(descriptor) / np.linalg.norm(reference)
    assert cosine > 0.97  # the same person whichever landmark model aligned the chip


def test_the_crop_alone_is_the_same_pixels_without_the_68_point_fit(
        vision_models: VisionModels) -> None:
    """A face that needs no descriptor in a frame gets only its expression crop: the same
    pixels that full alignment cuts, from the detector's box and 5 points."""
    image = _rotate(samples.astronaut(), 20)[0]
    detections = vision_models.detector.detect([image])[0]
    full = vision_models.aligner.align_face(image, detections.boxes[0], detections.landmarks[0])
    crop = vision_models.aligner.expression_crop(image, detections.boxes[0],
                                                 detections.landmarks[0])
    np.testing.assert_array_equal(crop, full.crop)
    other = _rotate(samples.cameraman(), 20)[0]  # control: another face differs
    found = vision_models.detector.detect([other])[0]
    assert not np.array_equal(crop, vision_models.aligner.expression_crop(
        other, found.boxes[0], found.landmarks[0]))
