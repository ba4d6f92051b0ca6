"""Per person, per clock hour: the running mean of the 10-D vectors.

Clock hours are those of the device's time zone (a zone with a half-hour offset gets hours
that start at :30 UTC; the doubled hour at the end of summer time is two hours), stored
as their UTC start. An hour counts only with at least ``min_faces`` faces; with fewer,
it is dropped when it closes, as too thin to say anything about a person.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from edge.core.clock import hour_start
from edge.core.records import HourlyVector, PartialHour


class HourlyAggregator:
    def __init__(self, zone: ZoneInfo, min_faces: int = 5) -> None:
        self.zone = zone
        self.min_faces = min_faces
        self._open: dict[str, PartialHour] = {}
        self.dropped_thin_hours = 0

    def add(self, person_id: str, vector: np.ndarray, at: datetime) -> list[HourlyVector]:
        """Add one face's vector; returns the person's previous hour if this one closed it."""
        start = hour_start(at, self.zone)
        closed: list[HourlyVector] = []
        current = self._open.get(person_id)
        if current is not None and current.hour_start != start:
            if start < current.hour_start:
                return []  # a late frame from an hour already closed: ignore it
            closed += self._close(current)
            current = None
        if current is None:
            current = self._open[person_id] = PartialHour(person_id, start)
        current.add(np.asarray(vector, np.float64))
        return closed

    def close_due(self, now: datetime) -> list[HourlyVector]:
        """Close every hour that has ended by ``now`` (call on each clock tick)."""
        this_hour = hour_start(now, self.zone)
        closed: list[HourlyVector] = []
        for person_id in [p for p, h in self._open.items() if h.hour_start < this_hour]:
            closed += self._close(self._open[person_id])
        return closed

    def _close(self, partial: PartialHour) -> list[HourlyVector]:
        del self._open[partial.person_id]
        if partial.faces < self.min_faces:
            self.dropped_thin_hours += 1
            return []
        return [HourlyVector(partial.person_id, partial.hour_start, partial.mean(),
                             partial.faces)]

    def partials(self) -> list[PartialHour]:
        """The open hours, for flushing to the store on shutdown."""
        return list(self._open.values())

    def restore(self, partials: list[PartialHour]) -> None:
        """Take back the open hours saved before a restart."""
        for partial in partials:
            self._open[partial.person_id] = partial

    def forget(self, person_id: str) -> None:
        self._open.pop(person_id, None)

