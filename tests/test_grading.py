from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.analytics.grading import GradingPolicy, grade_hour, label_for, three_sigma
from edge.core.emotions import (
    COMPLEX_GROUP,
    COMPONENTS,
    INSUFFICIENT_HISTORY,
    NEGATIVE_GROUP,
    POSITIVE_GROUP,
)
from edge.core.records import HourlyVector

HOUR = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


def noisy_history(hours: int = 100, sd: float = 0.02, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.3 + rng.normal(0, sd, (hours, 10))


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("direction", [+1, -1])
def test_three_sigma_fires_only_in_the_studys_direction(component: str, direction: int) -> None:
    history = noisy_history()
    value = history.mean(axis=0).copy()
    value[COMPONENTS.index(component)] += direction * 0.5  # 25 sd away
    fired = {c for c, f in zip(COMPONENTS, three_sigma(history, value, 0.0)) if f}
    rises_matter = component in NEGATIVE_GROUP or component in COMPLEX_GROUP
    expected = {component} if (direction > 0) == rises_matter else set()
    assert fired == expected
    assert component in POSITIVE_GROUP or rises_matter


def test_three_sigma_boundary_uses_the_sample_sd() -> None:
    history = np.zeros((4, 10))
    history[:, 1] = [0.0, 0.1, 0.2, 0.3]  # sad: mean 0.15, sample sd 0.129099
    limit = 0.15 + 3 * np.std([0.0, 0.1, 0.2, 0.3], ddof=1)
    just_below, just_above = np.zeros(10), np.zeros(10)
    just_below[1], just_above[1] = limit - 1e-6, limit + 1e-6
    assert not three_sigma(history, just_below, 0.0)[1]
    assert three_sigma(history, just_above, 0.0)[1]


def test_zero_variance_uses_the_floor() -> None:
    flat = np.full((50, 10), 0.2)
    small, large = np.full(10, 0.2), np.full(10, 0.2)
    small[COMPONENTS.index("sad")] += 0.02  # below 3 x 0.01
    large[COMPONENTS.index("sad")] += 0.05
    assert not three_sigma(flat, small, 0.01).any()
    assert three_sigma(flat, large, 0.01).tolist() == [c == "sad" for c in COMPONENTS]
    assert three_sigma(flat, small, 0.0)[COMPONENTS.index("sad")]  # no floor: any rise fires
    assert not three_sigma(flat, np.full(10, 0.2), 0.0).any()      # no change: nothing


def hourly(vector: np.ndarray) -> HourlyVector:
    return HourlyVector("p-1", HOUR, vector, 12)


def test_insufficient_history_is_not_no_risk() -> None:
    grade = grade_hour(hourly(np.full(10, 0.9)), noisy_history(23), GradingPolicy())
    assert (grade.status, grade.label, grade.level, grade.lof_score) == (
        "insufficient_history", INSUFFICIENT_HISTORY, 0, None)
    assert grade.history_hours == 23


def test_lof_gate() -> None:
    history = noisy_history()
    ordinary = history.mean(axis=0).copy()
    ordinary[COMPONENTS.index("sad")] += 0.07  # 3.5 sd on one axis: LOF stays low
    gated = grade_hour(hourly(ordinary), history, GradingPolicy(lof_threshold=1.5))
    assert not gated.anomaly and gated.lof_score is not None and gated.lof_score < 1.5
    assert gated.fired == ("sad",) and gated.level == 0 and gated.label == "No risk"
    ungated = grade_hour(hourly(ordinary), history, GradingPolicy(require_lof_anomaly=False))
    assert ungated.level == 1 and ungated.label == "Low risk"


def test_anomalous_hour_is_graded() -> None:
    history = noisy_history()
    value = history.mean(axis=0).copy()
    for name, change in (("sad", 0.3), ("angry", 0.3), ("negative", 0.6), ("happy", -0.25),
                         ("positive", -0.25)):
        value[COMPONENTS.index(name)] += change
    grade = grade_hour(hourly(value), history, GradingPolicy())
    assert grade.anomaly and grade.lof_score > 1.5
    assert set(grade.fired) == {"sad", "angry", "negative", "happy", "positive"}
    assert (grade.level, grade.label) == (5, "High risk")


@pytest.mark.parametrize(("level", "cuts", "label"), [
    (0, (1, 3, 5), "No risk"), (1, (1, 3, 5), "Low risk"), (2, (1, 3, 5), "Low risk"),
    (3, (1, 3, 5), "Medium risk"), (4, (1, 3, 5), "Medium risk"), (5, (1, 3, 5), "High risk"),
    (10, (1, 3, 5), "High risk"), (1, (2, 4, 6), "No risk"), (6, (2, 4, 6), "High risk"),
])
def test_labels(level: int, cuts: tuple[int, int, int], label: str) -> None:
    assert label_for(level, cuts) == label


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.2), st.booleans())
def test_a_grade_never_exceeds_ten(seed: int, floor: float, gate: bool) -> None:
    rng = np.random.default_rng(seed)
    history = rng.dirichlet(np.ones(10), int(rng.integers(24, 200)))
    value = rng.uniform(-5, 5, 10)
    grade = grade_hour(hourly(value), history,
                       GradingPolicy(sigma_floor=floor, require_lof_anomaly=gate))
    assert 0 <= grade.level <= 10 and grade.level <= len(grade.fired)
