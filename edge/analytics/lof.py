"""Local Outlier Factor with Manhattan distance: scikit-learn's, in novelty mode.

The study's detector, as scikit-learn implements it (Breunig et al. 2000): N_k(p) are the
k nearest training points of p (a training point is not its own neighbour); k-distance(o)
is the distance from o to its k-th neighbour; reach-dist(p, o) = max(d(p, o),
k-distance(o)); lrd(p) = 1 / (mean over N_k(p) of reach-dist(p, o) + 1e-10); LOF(p) =
mean over N_k(p) of lrd(o), divided by lrd(p). Near 1 is an inlier; well above 1, an
outlier. The tests hold it to a hand-computed case and to an independent NumPy version.

A person's history is at most a few hundred 10-D points, so a fit per graded hour costs
about 1.7 ms (``tools/bench_analytics.py``): nothing next to an hour. Importing
scikit-learn costs about 97 MB and a second, so it happens at the first graded hour, in
the process that grades: the descriptor worker and the other commands never load it.
"""

from __future__ import annotations

import warnings

import numpy as np


def local_outlier_factor(history: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """LOF of each query point against the history (novelty detection), shape (len(queries),).

    ``k`` is capped at len(history) - 1, as a history shorter than k + 1 hours has no k
    neighbours to offer.
    """
    history = np.asarray(history, np.float64)
    queries = np.asarray(queries, np.float64).reshape(-1, history.shape[1])
    if len(history) < 2:
        raise ValueError("LOF needs at least 2 history points")
    from sklearn.neighbors import LocalOutlierFactor

    model = LocalOutlierFactor(n_neighbors=min(k, len(history) - 1), metric="manhattan",
                               novelty=True)
    with warnings.catch_warnings():  # duplicate points only make it warn, the value is right
        warnings.simplefilter("ignore", UserWarning)
        model.fit(history)
    return -model.score_samples(queries)
