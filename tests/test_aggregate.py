from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edge.analytics.aggregate import HourlyAggregator
from edge.core.clock import hour_start

UTC = timezone.utc


def vec(value: float) -> np.ndarray:
    return np.full(10, value)


def test_hours_follow_the_device_time_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+5:30: local hours start at :30 UTC
    moment = datetime(2026, 3, 2, 4, 45, tzinfo=UTC)  # 10:15 local
    assert hour_start(moment, kolkata) == datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
    assert hour_start(moment, ZoneInfo("UTC")) == datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def test_the_repeated_hour_at_the_end_of_summer_time_is_two_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # 2026-10-25: 03:00 CEST -> 02:00 CET
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)   # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert hour_start(first, berlin) == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert hour_start(second, berlin) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        hour_start(datetime(2026, 1, 1, 9), ZoneInfo("UTC"))


def test_running_mean_and_closing() -> None:
    aggregator = HourlyAggregator(ZoneInfo("UTC"), min_faces=3)
    nine = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for i, value in enumerate([0.1, 0.2, 0.6]):
        assert aggregator.add("ann", vec(value), nine + timedelta(minutes=10 * i)) == []
    closed = aggregator.add("ann", vec(0.9), nine + timedelta(hours=1, minutes=1))
    assert len(closed) == 1
    assert closed[0].hour_start == nine and closed[0].faces == 3
    np.testing.assert_allclose(closed[0].vector, vec(0.3), rtol=1e-6)
    # the 10:00 hour holds one face; at 11:00 it closes and is too thin to count
    assert aggregator.close_due(nine + timedelta(hours=2)) == []
    assert aggregator.dropped_thin_hours == 1


def test_close_due_closes_only_ended_hours_of_each_person() -> None:
    aggregator = HourlyAggregator(ZoneInfo("UTC"), min_faces=1)
    nine = datetime(2026, 3, 2, 9, tzinfo=UTC)
    aggregator.add("ann", vec(0.1), nine)
    aggregator.add("bob", vec(0.2), nine + timedelta(minutes=70))
    closed = aggregator.close_due(nine + timedelta(minutes=75))
    assert [c.person_id for c in closed] == ["ann"]
    assert [p.person_id for p in aggregator.partials()] == ["bob"]


def test_a_late_frame_from_a_closed_hour_is_ignored() -> None:
    aggregator = HourlyAggregator(ZoneInfo("UTC"), min_faces=1)
    nine = datetime(2026, 3, 2, 9, tzinfo=UTC)
    aggregator.add("ann", vec(0.1), nine + timedelta(hours=1))
    assert aggregator.add("ann", vec(0.9), nine + timedelta(minutes=59)) == []
    (partial,) = aggregator.partials()
    assert partial.faces == 1 and partial.hour_start == nine + timedelta(hours=1)
