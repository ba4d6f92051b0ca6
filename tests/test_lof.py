from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import LocalOutlierFactor

from edge.analytics.lof import local_outlier_factor


def padded(points: list[tuple[float, float]]) -> np.ndarray:
    out = np.zeros((len(points), 10))
    out[:, :2] = points
    return out


# Manhattan distances between A(0,0) B(1,0) C(2,1) D(4,3): AB 1, AC 3, AD 7, BC 2, BD 6,
# CD 4 (Euclidean would differ: AC = 2.236). With k = 2:
#   k-distance: A 3 (B, C), B 2 (A, C), C 3 (B, A), D 6 (C, B)
#   lrd: A 1/mean(max(1,2), max(3,3)) = 0.4; B 1/mean(3, 3) = 1/3; C 1/mean(2, 3) = 0.4;
#        D 1/mean(max(4,3), max(6,2)) = 0.2
#   query (6,4): neighbours D (3), C (7); reach 6 and 7; lrd 1/6.5;
#        LOF = mean(0.2, 0.4) * 6.5 = 1.95
#   query (1,1): neighbours B (1), C (1); reach max(1,2)=2, max(1,3)=3; lrd 0.4;
#        LOF = mean(1/3, 0.4) / 0.4 = 0.916667
HISTORY = padded([(0, 0), (1, 0), (2, 1), (4, 3)])


def test_hand_computed_manhattan_lof() -> None:
    scores = local_outlier_factor(HISTORY, padded([(6, 4), (1, 1)]), k=2)
    np.testing.assert_allclose(scores, [1.95, (1 / 3 + 0.4) / 2 / 0.4], rtol=1e-8)


@pytest.mark.parametrize(("n", "k"), [(168, 20), (30, 5), (24, 20), (5, 3), (2, 1)])
def test_equals_scikit_learn(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 100 + k)
    history, queries = rng.dirichlet(np.ones(10), n), rng.dirichlet(np.ones(10), 7)
    reference = LocalOutlierFactor(n_neighbors=min(k, n - 1), metric="manhattan",
                                   novelty=True).fit(history)
    np.testing.assert_allclose(local_outlier_factor(history, queries, k),
                               -reference.score_samples(queries), rtol=1e-9)


def test_needs_two_points() -> None:
    with pytest.raises(ValueError):
        local_outlier_factor(HISTORY[:1], HISTORY[:1], 5)


vectors = st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s).dirichlet(
    np.ones(10), 40))


@settings(max_examples=40, deadline=None)
@given(vectors, st.floats(-5, 5), st.integers(2, 20))
def test_adding_a_constant_everywhere_does_not_change_lof(points: np.ndarray, shift: float,
                                                          k: int) -> None:
    history, query = points[:-1], points[-1:]
    np.testing.assert_allclose(local_outlier_factor(history + shift, query + shift, k),
                               local_outlier_factor(history, query, k), rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(vectors, st.randoms(use_true_random=False))
def test_history_order_does_not_matter(points: np.ndarray, shuffle) -> None:
    history, query = points[:-1], points[-1:]
    order = list(range(len(history)))
    shuffle.shuffle(order)
    np.testing.assert_allclose(local_outlier_factor(history[order], query, 10),
                               local_outlier_factor(history, query, 10), rtol=1e-9)
