from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.vision.boxes import iou_matrix, nms


def test_iou_hand_computed() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    # overlap 5x5=25, union 100+100-25=175; identical; disjoint; half contained: 50/100
    np.testing.assert_allclose(iou_matrix(a, b)[0], [25 / 175, 1.0, 0.0, 0.5], rtol=1e-6)


def test_iou_of_degenerate_boxes_is_zero() -> None:
    a = np.array([[3, 3, 3, 3]], np.float32)
    assert iou_matrix(a, a)[0, 0] == 0.0


def test_nms_hand_computed() -> None:
    boxes = np.array([
        [0, 0, 10, 10],     # 0: score 0.9
        [1, 0, 11, 10],     # 1: IoU with 0 = 90/110 = 0.818 -> suppressed
        [20, 20, 30, 30],   # 2: disjoint -> kept
        [5, 0, 15, 10],     # 3: IoU with 0 = 50/150 = 0.333 -> kept at 0.4
    ], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.3).tolist() == [0, 2]       # 0.333 > 0.3: suppressed
    assert nms(boxes, scores, 0.4, max_keep=1).tolist() == [0]


def test_nms_orders_by_score() -> None:
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], np.float32)
    assert nms(boxes, np.array([0.1, 0.9, 0.5]), 0.5).tolist() == [1, 2, 0]


coords = st.floats(0, 100, allow_nan=False)


@given(st.lists(st.tuples(coords, coords, st.floats(1, 50), st.floats(1, 50),
                          st.floats(0, 1)), min_size=1, max_size=30))
def test_nms_kept_boxes_never_overlap_beyond_threshold(items: list) -> None:
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in items], np.float32)
    scores = np.array([s for *_, s in items], np.float32)
    kept = nms(boxes, scores, 0.45)
    overlaps = iou_matrix(boxes[kept], boxes[kept])
    np.fill_diagonal(overlaps, 0)
    assert overlaps.max(initial=0) <= 0.45 + 1e-6
    assert scores[kept[0]] == pytest.approx(scores.max())
