"""Whether the wall clock can be trusted to date an hour.

Every hourly vector is dated by the wall clock. A box without a battery-backed clock boots
in 1970 until NTP sets it; a clock set back runs behind hours already stored. On such a
clock an observation cannot be dated, so it is not aggregated at all (it would make an
hour dated 1970, or fall into an hour already closed): the service says so once when it
begins and once when it ends, and shows it in `edge status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

# no box runs this software before it existed: an earlier clock has not been set yet
EARLIEST_PLAUSIBLE = datetime(2026, 1, 1, tzinfo=timezone.utc)
SET_BACK_SLACK = timedelta(minutes=1)  # NTP's small corrections are not a clock set back


class ClockCheck:
    def __init__(self, newest_hour: datetime | None) -> None:
        self.newest_end = None if newest_hour is None else newest_hour + timedelta(hours=1)

    def problem(self, now: datetime) -> str | None:
        """Why ``now`` cannot date an observation, or None when it can."""
        if now < EARLIEST_PLAUSIBLE:
            return (f"the clock says {now:%Y-%m-%d %H:%M} UTC, before this software existed: "
                    "it has not been set (no battery-backed clock, no NTP yet?)")
        if self.newest_end is not None and now < self.newest_end - SET_BACK_SLACK:
            return (f"the clock says {now:%Y-%m-%d %H:%M} UTC, behind the newest hour already "
                    f"stored (ending {self.newest_end:%Y-%m-%d %H:%M}): it was set back")
        return None

    def saw_hours(self, hours: Iterable[datetime]) -> None:
        """Hours just stored: the clock must not fall behind them."""
        for hour in hours:
            end = hour + timedelta(hours=1)
            if self.newest_end is None or end > self.newest_end:
                self.newest_end = end
