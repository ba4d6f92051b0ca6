"""Risk analytics: vectors in, closed hours graded and stored, grades out.

``RiskAnalytics`` owns the hourly aggregator and talks to the store; the clock is passed
in. Partial hours are saved by ``flush()`` (on shutdown) and taken back when it starts
again. (Named ``risk`` rather than ``engine``: the inference ``Engine`` is another thing.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.aggregate import HourlyAggregator
from edge.analytics.grading import GradingPolicy, grade_hour
from edge.core.clock import Clock, hour_start
from edge.core.records import HourlyVector, RiskGrade
from edge.settings import AnalyticsSettings
from edge.store import Store

HOURS_PER_WEEK = 168
SIGMA_WINDOW = timedelta(days=7)


class RiskAnalytics:
    def __init__(self, store: Store, settings: AnalyticsSettings, zone: ZoneInfo,
                 clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.policy = GradingPolicy.from_settings(settings)
        self.keep_hours = settings.ring_weeks * HOURS_PER_WEEK
        self.aggregator = HourlyAggregator(zone, settings.min_faces_per_hour)
        self.aggregator.restore(store.load_partials())
        self.last_closed: list[HourlyVector] = []  # the hours the latest call closed

    def observe(self, observations: Iterable[tuple[str, np.ndarray, datetime | None]]
                ) -> list[RiskGrade]:
        """Add (person, 10-D vector, time or None for now) tuples; grade hours they close."""
        closed: list[HourlyVector] = []
        for person_id, vector, at in observations:
            closed += self.aggregator.add(person_id, vector, at or self.clock.now())
        return self._grade_and_store(closed)

    def tick(self) -> list[RiskGrade]:
        """Close and grade every hour that has ended by the clock's now."""
        return self._grade_and_store(self.aggregator.close_due(self.clock.now()))

    def forget(self, person_id: str) -> None:
        """Drop a forgotten person's open hour (the store has already erased the rest)."""
        self.aggregator.forget(person_id)

    def hour_of(self, moment: datetime) -> datetime:
        """UTC start of the device-local clock hour containing ``moment``."""
        return hour_start(moment, self.aggregator.zone)

    def flush(self) -> None:
        """Save the open hours so that a restart continues them."""
        self.store.save_partials(self.aggregator.partials())

    def _grade_and_store(self, closed: list[HourlyVector]) -> list[RiskGrade]:
        self.last_closed = closed
        if not closed:
            return []
        grades = [self.grade(hour) for hour in sorted(closed, key=lambda h: h.hour_start)]
        self.store.record_hours(closed, grades, keep_hours=self.keep_hours)
        return grades

    def grade(self, hour: HourlyVector) -> RiskGrade:
        """LOF over the ring; 3-sigma over the past week (or the latest hours if too few)."""
        hours, history = self.store.history(hour.person_id, before=hour.hour_start,
                                            limit=self.keep_hours)
        if len(history) < self.policy.min_history_hours:
            return grade_hour(hour, history, self.policy)
        week = np.array([h >= hour.hour_start - SIGMA_WINDOW for h in hours])
        if week.sum() < self.policy.min_history_hours:
            week[-self.policy.min_history_hours:] = True
        return grade_hour(hour, history, self.policy, sigma_history=history[week])
