"""Risk analytics: vectors in, closed hours graded and stored, grades out.

``RiskAnalytics`` owns the hourly aggregator and talks to the store; the clock is passed
in. (Named ``risk`` rather than ``engine``: the inference ``Engine`` is another thing.)

- A closed hour, its grade and its alerts (built by the ``alerts_for`` function the caller
  passes, so that analytics needs nothing of the publishing layer) are committed in one
  transaction: a full disk loses all three or none, never a grade without its alert.
- An hour is closed, graded and alerted once. An hour already stored (a restart that
  restored a stale open hour, a clock set back) is never graded again nor overwritten.
- Open hours are saved by ``flush()``, which the service calls every
  ``storage.partials_every_s`` and at a clean stop, so a crash loses at most that much of
  each person's open hour; a restart continues them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.aggregate import HourlyAggregator
from edge.analytics.grading import GradingPolicy, grade_hour
from edge.core.clock import Clock, hour_start
from edge.core.errors import EdgeError
from edge.core.logs import get_logger
from edge.core.records import HourlyVector, OutboxMessage, RiskGrade
from edge.settings import AnalyticsSettings
from edge.store import Store

HOURS_PER_WEEK = 168
RETRY_S = 5.0  # how often closed hours that a failed write kept in memory are tried again
AlertsFor = Callable[[Sequence[RiskGrade]], list[OutboxMessage]]
log = get_logger(__name__)


class StoreUnavailable(EdgeError):
    """The store cannot be written now (a full disk, an I/O error): the hours are kept."""
SIGMA_WINDOW = timedelta(days=7)


class RiskAnalytics:
    def __init__(self, store: Store, settings: AnalyticsSettings, zone: ZoneInfo,
                 clock: Clock, *, alerts_for: AlertsFor | None = None,
                 max_outbox: int = 10_000) -> None:
        self.store = store
        self.clock = clock
        self.alerts_for = alerts_for
        self.max_outbox = max_outbox
        self._unstored: list[HourlyVector] = []  # closed but not stored yet: kept to retry
        self._retry_at = 0.0
        self.alerts_queued = 0    # since start: alerts committed to the outbox
        self.alerts_dropped = 0   # since start: alerts the outbox bound pushed out
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

    @property
    def unstored_hours(self) -> int:
        """Closed hours waiting for the store to take them (a full disk, say)."""
        return len(self._unstored)

    def _grade_and_store(self, closed: list[HourlyVector]) -> list[RiskGrade]:
        """Grade and store newly closed hours, and any that an earlier write could not
        store. A write that fails (a full disk, an I/O error) keeps the hours in memory and
        raises ``StoreUnavailable``; they are tried again every ``RETRY_S`` seconds."""
        if self._unstored:
            if not closed and time.monotonic() < self._retry_at:
                return []
            closed = self._unstored + closed
        try:
            grades = self._grade_and_store_now(closed)
        except sqlite3.OperationalError as exc:
            self._unstored = closed
            self._retry_at = time.monotonic() + RETRY_S
            raise StoreUnavailable(f"cannot store {len(closed)} closed hour(s): {exc}") from exc
        self._unstored = []
        return grades

    def _grade_and_store_now(self, closed: list[HourlyVector]) -> list[RiskGrade]:
        stored = [self.store.has_hour(h.person_id, h.hour_start) for h in closed]
        if any(stored):
            log.warning("hour_already_closed", hours=sum(stored),
                        action="the stored hour stays; it is not graded or alerted again")
            closed = [h for h, known in zip(closed, stored) if not known]
        self.last_closed = closed
        if not closed:
            return []
        grades = [self.grade(hour) for hour in sorted(closed, key=lambda h: h.hour_start)]
        messages = self.alerts_for(grades) if self.alerts_for is not None else []
        dropped = self.store.record_hours(closed, grades, keep_hours=self.keep_hours,
                                          messages=messages, max_messages=self.max_outbox)
        self.alerts_queued += len(messages)
        self.alerts_dropped += dropped
        if dropped:
            log.warning("alerts_dropped", dropped=dropped,
                        reason="outbox bound reached (mqtt.outbox_max_messages)")
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
