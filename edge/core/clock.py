"""Clocks and time helpers. Time is passed in, never read from a global, so a week
replays in seconds and tests are exact."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimulatedClock:
    """A clock that moves only when told to; for replays, simulations and exact tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the start time must be timezone-aware")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> datetime:
        return self.advance(moment.astimezone(timezone.utc) - self._now)

    def step(self, moment: datetime) -> datetime:
        """Move to any moment, backwards too, as NTP steps a wrong clock (fault drills)."""
        if moment.tzinfo is None:
            raise ValueError("the moment must be timezone-aware")
        self._now = moment.astimezone(timezone.utc)
        return self._now


def utc_text(moment: datetime) -> str:
    """The store's sortable text form of a UTC instant: 2026-11-24T09:00:00Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def hour_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """UTC start of the device-local clock hour containing ``moment``.

    A zone with a half-hour offset gets hours that start at :30 UTC; the doubled hour at
    the end of summer time is two distinct hours (their UTC starts differ).
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    local = moment.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)
