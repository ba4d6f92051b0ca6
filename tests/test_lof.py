from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import LocalOutlierFactor

from edge.analytics.lof import local_outlier_factor

# --- an independent NumPy LOF, the device's own until scikit-learn took over: a regression
# reference that shares no code with scikit-learn --------------------------------------------
EPSILON = 1e-10  # as scikit-learn: keeps lrd finite when points coincide


def manhattan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) L1 distances, one column at a time (5x faster than a 3-D broadcast)."""
    out = np.zeros((len(a), len(b)))
    for column in range(a.shape[1]):
        out += np.abs(a[:, column, None] - b[None, :, column])
    return out


def _nearest(dist: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest entries of each row, nearest first."""
    part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def numpy_lof(history: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """LOF of each query point against the history (novelty detection), shape (len(queries),)."""
    history = np.asarray(history, np.float64)
    queries = np.asarray(queries, np.float64).reshape(-1, history.shape[1])
    n = len(history)
    if n < 2:
        raise ValueError("LOF needs at least 2 history points")
    k = min(k, n - 1)
    train = manhattan(history, history)
    np.fill_diagonal(train, np.inf)  # a point is not its own neighbour
    train_neighbours = _nearest(train, k)
    train_neighbour_dist = np.take_along_axis(train, train_neighbours, axis=1)
    k_distance = train_neighbour_dist[:, -1]
    reach = np.maximum(train_neighbour_dist, k_distance[train_neighbours])
    train_lrd = 1.0 / (reach.mean(axis=1) + EPSILON)

    dist = manhattan(queries, history)
    neighbours = _nearest(dist, k)
    neighbour_dist = np.take_along_axis(dist, neighbours, axis=1)
    query_reach = np.maximum(neighbour_dist, k_distance[neighbours])
    query_lrd = 1.0 / (query_reach.mean(axis=1) + EPSILON)
    return train_lrd[neighbours].mean(axis=1) / query_lrd



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
def test_equals_an_independent_numpy_lof(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 100 + k)
    history, queries = rng.dirichlet(np.ones(10), n), rng.dirichlet(np.ones(10), 7)
    np.testing.assert_allclose(local_outlier_factor(history, queries, k),
                               numpy_lof(history, queries, k), rtol=1e-9)


def test_numpy_reference_is_not_vacuous() -> None:
    """Positive control: the reference tells Manhattan from Euclidean LOF."""
    rng = np.random.default_rng(3)
    history, queries = rng.dirichlet(np.ones(10), 60), rng.dirichlet(np.ones(10), 5)
    euclidean = LocalOutlierFactor(n_neighbors=10, novelty=True).fit(history)
    assert not np.allclose(numpy_lof(history, queries, 10),
                           -euclidean.score_samples(queries), rtol=1e-3)


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
