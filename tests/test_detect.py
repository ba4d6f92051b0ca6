from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edge.demos import samples
from edge.demos.evidence import detection_recall
from edge.vision.detect import decode_boxes, decode_landmarks, prior_boxes
from edge.vision.loader import VisionModels
from edge.vision.preprocess import letterbox


def test_prior_layout_matches_the_network(vision_models: VisionModels) -> None:
    priors = prior_boxes(480, 640)
    expected = sum(math.ceil(480 / s) * math.ceil(640 / s) * 2 for s in (8, 16, 32))
    assert priors.shape == (expected, 4) == (12600, 4)
    out = vision_models.detector.engine.run(
        {"input": np.zeros((1, 3, 480, 640), np.float32)}, ["loc"])
    assert out["loc"].shape[1] == expected
    # first cell, both sizes; then the next column; the last prior is the big 512 anchor
    np.testing.assert_allclose(priors[0], [4 / 640, 4 / 480, 16 / 640, 16 / 480])
    np.testing.assert_allclose(priors[1], [4 / 640, 4 / 480, 32 / 640, 32 / 480])
    np.testing.assert_allclose(priors[2], [12 / 640, 4 / 480, 16 / 640, 16 / 480])
    np.testing.assert_allclose(priors[-1], [624 / 640, 464 / 480, 512 / 640, 512 / 480])


def test_decode_hand_computed() -> None:
    prior = np.array([[0.5, 0.5, 0.2, 0.1]], np.float32)
    # zero offsets: the prior itself
    np.testing.assert_allclose(decode_boxes(np.zeros((1, 4), np.float32), prior),
                               [[0.4, 0.45, 0.6, 0.55]], atol=1e-7)
    # dx = 1 moves the centre by 0.1 * w; dw = ln(2) / 0.2 doubles the width
    loc = np.array([[1.0, 0.0, math.log(2) / 0.2, 0.0]], np.float32)
    np.testing.assert_allclose(decode_boxes(loc, prior), [[0.32, 0.45, 0.72, 0.55]], atol=1e-6)
    raw = np.zeros((1, 10), np.float32)
    raw[0, 2:4] = [1.0, -1.0]  # second point: +0.1*w in x, -0.1*h in y
    points = decode_landmarks(raw, prior)
    np.testing.assert_allclose(points[0, 0], [0.5, 0.5])
    np.testing.assert_allclose(points[0, 1], [0.52, 0.49], atol=1e-6)


def test_letterbox_keeps_aspect_and_pads_right_and_bottom() -> None:
    frame = np.full((720, 1280, 3), 200, np.uint8)
    canvas, box = letterbox(frame, 640, 480, (104, 117, 123))
    assert box.scale == 0.5
    assert (canvas[:360] == 200).all()
    assert (canvas[360:] == [104, 117, 123]).all()


def _one_box(models: VisionModels, frame: np.ndarray) -> np.ndarray:
    detections = models.detector.detect([frame])[0]
    assert len(detections) == 1
    return detections.boxes[0]


def test_coordinates_survive_scaling_and_offsets(vision_models: VisionModels) -> None:
    photo = samples.astronaut()
    reference = _one_box(vision_models, photo)
    # 1024 px: the letterbox halves it to the same network input as the 512 px photo
    scaled = _one_box(vision_models, cv2.resize(photo, (1024, 1024)))
    np.testing.assert_allclose(scaled / 2, reference, atol=1.0)
    # same scale, shifted by multiples of the largest stride (32): same anchors, same box
    small = cv2.resize(photo, (384, 384), interpolation=cv2.INTER_AREA)
    at_origin = np.full((480, 640, 3), 90, np.uint8)
    at_origin[:384, :384] = small
    shifted = np.full((480, 640, 3), 90, np.uint8)
    shifted[64:448, 224:608] = small
    np.testing.assert_allclose(_one_box(vision_models, shifted) - [224, 64, 224, 64],
                               _one_box(vision_models, at_origin), atol=1.0)


def test_batch_equals_single_frames(vision_models: VisionModels) -> None:
    frames = [samples.astronaut(), samples.group_scene(), samples.cameraman()]
    batched = vision_models.detector.detect(frames)
    for frame, together in zip(frames, batched):
        alone = vision_models.detector.detect([frame])[0]
        assert len(alone) == len(together)
        np.testing.assert_allclose(alone.boxes, together.boxes, atol=1e-3)
        np.testing.assert_allclose(alone.landmarks, together.landmarks, atol=1e-3)


@pytest.mark.parametrize(("frame", "faces"), [
    (samples.astronaut, 1), (samples.cameraman, 1), (samples.group_scene, 3),
    (lambda: np.full((480, 640, 3), 128, np.uint8), 0),
    (lambda: np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), 0),
])
def test_face_counts(vision_models: VisionModels, frame, faces: int) -> None:
    assert len(vision_models.detector.detect([frame()])[0]) == faces


def test_landmarks_lie_inside_the_box_in_order(vision_models: VisionModels) -> None:
    detections = vision_models.detector.detect([samples.astronaut()])[0]
    (x1, y1, x2, y2), points = detections.boxes[0], detections.landmarks[0]
    assert ((points[:, 0] > x1) & (points[:, 0] < x2)).all()
    assert ((points[:, 1] > y1) & (points[:, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


@pytest.mark.slow
def test_recall_on_lfw_subset(vision_models: VisionModels) -> None:
    """Tight 25 px crops are below what RetinaFace sees; from 48 px it finds nearly all."""
    at_48, at_100 = detection_recall(vision_models, 48), detection_recall(vision_models, 100)
    assert at_48.recall >= 0.9
    assert at_100.recall >= 0.95
    assert at_48.false_on_faces + at_100.false_on_faces == 0
    assert at_48.false_on_non_faces + at_100.false_on_non_faces <= 2


def test_regions_find_the_faces_where_the_whole_frame_does(vision_models: VisionModels) -> None:
    """The detector on square regions around faces, one reaching past the frame's edge:
    each finds its face where the whole-frame detection has it, in frame coordinates."""
    scene = samples.group_scene()
    detector = vision_models.detector
    (whole,) = detector.detect([scene])
    assert len(whole) == 3
    centres = (whole.boxes[:, :2] + whole.boxes[:, 2:]) / 2
    half = (whole.boxes[:, 2:] - whole.boxes[:, :2]).max(axis=1, keepdims=True)
    half[2] *= 1.5  # the stranger's region, three times the face, reaches past the edge
    regions = np.hstack([centres - half, centres + half])
    assert regions[2, 2] > scene.shape[1]
    found = detector.detect_regions(scene, regions, 128)
    for index, faces in enumerate(found):
        assert len(faces) >= 1
        best = faces.boxes[np.argmax(faces.scores)]
        side = float(max(whole.boxes[index, 2:] - whole.boxes[index, :2]))
        np.testing.assert_allclose(best, whole.boxes[index], atol=0.1 * side)
        assert (faces.landmarks[np.argmax(faces.scores)] >= best[:2] - 2).all()
    # control: a region of background finds nothing
    assert len(detector.detect_regions(scene, np.array([[560, 380, 640, 460]]), 128)[0]) == 0
