"""The collector's reads: what the console, the CSV export and ``/metrics`` show.

Each read takes the sites a user may see (None: all), so no page can show another site's
alerts by a crafted filter: the restriction is in the SQL, not in the template.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from edge.central.database import Connection

PAGE = 200  # alerts on one page; the CSV export has no limit


@dataclass(frozen=True)
class AlertFilter:
    site: str | None = None
    device: str | None = None
    min_level: int | None = None
    day_from: date | None = None
    day_to: date | None = None
    state: str | None = None  # open | acknowledged | resolved; None: any
    person: str | None = None


@dataclass(frozen=True)
class AlertRow:
    message_id: str
    site: str
    device: str
    person: str
    hour_start: str
    hour_end: str
    level: int
    label: str
    anomaly: bool
    received_at: float
    state: str


@dataclass(frozen=True)
class ActionRow:
    action: str
    note: str
    actor: str
    at: float


@dataclass(frozen=True)
class DeviceRow:
    site: str
    device: str
    availability: str | None
    reason: str | None
    availability_at: float | None
    last_seen: float
    stats_at: float | None
    uptime_s: float | None
    frames_per_s: float | None
    outbox_depth: int | None
    temperature_c: float | None
    camera_reconnects: int | None
    faults: list[str]

    def health(self, now: float, stale_after_s: float) -> str:
        """online, offline, stale (online, but its stats stopped) or unknown."""
        if self.availability == "offline":
            return "offline"
        last = self.stats_at if self.stats_at is not None else self.availability_at
        if last is None:
            return "unknown"
        if now - last > stale_after_s:
            return "stale"
        return self.availability or "unknown"


ALERT_COLUMNS = ("message_id, site, device, person, hour_start, hour_end, level, label, "
                 "anomaly, received_at, state")
DEVICE_COLUMNS = ("site, device, availability, reason, availability_at, last_seen, stats_at, "
                  "uptime_s, frames_per_s, outbox_depth, temperature_c, camera_reconnects, "
                  "faults")


def _site_clause(sites: set[str] | None, where: list[str], params: list[Any]) -> None:
    if sites is not None:
        if not sites:
            where.append("1 = 0")
            return
        where.append(f"site IN ({', '.join('?' for _ in sites)})")
        params.extend(sorted(sites))


def _alert(row: Sequence[Any]) -> AlertRow:
    values = list(row)
    values[8] = bool(values[8])
    return AlertRow(*values)


def alerts(db: Connection, wanted: AlertFilter, sites: set[str] | None,
           limit: int | None = PAGE) -> list[AlertRow]:
    """Newest hour first."""
    where: list[str] = []
    params: list[Any] = []
    _site_clause(sites, where, params)
    for column, value in (("site", wanted.site), ("device", wanted.device),
                          ("state", wanted.state), ("person", wanted.person)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if wanted.min_level is not None:
        where.append("level >= ?")
        params.append(wanted.min_level)
    if wanted.day_from is not None:
        where.append("hour_start >= ?")
        params.append(wanted.day_from.isoformat())
    if wanted.day_to is not None:
        where.append("hour_start < ?")
        params.append((wanted.day_to + timedelta(days=1)).isoformat())
    sql = f"SELECT {ALERT_COLUMNS} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY hour_start DESC, received_at DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_alert(row) for row in db.query(sql, params)]


def alert(db: Connection, message_id: str,
          sites: set[str] | None) -> tuple[AlertRow, list[ActionRow]] | None:
    where, params = ["message_id = ?"], [message_id]
    _site_clause(sites, where, params)
    rows = db.query(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)}", params)
    if not rows:
        return None
    actions = [ActionRow(*row) for row in db.query(
        "SELECT action, note, actor, at FROM alert_actions WHERE message_id = ? ORDER BY at, id",
        (message_id,))]
    return _alert(rows[0]), actions


def timeline(db: Connection, person: str, sites: set[str] | None) -> list[AlertRow]:
    """Every alert of one pseudonym, oldest hour first."""
    where, params = ["person = ?"], [person]
    _site_clause(sites, where, params)
    return [_alert(row) for row in db.query(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
        "ORDER BY hour_start, received_at", params)]


def devices(db: Connection, sites: set[str] | None) -> list[DeviceRow]:
    where: list[str] = []
    params: list[Any] = []
    _site_clause(sites, where, params)
    sql = f"SELECT {DEVICE_COLUMNS} FROM devices"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = db.query(sql + " ORDER BY site, device", params)
    return [_device(row) for row in rows]


def _device(row: Sequence[Any]) -> DeviceRow:
    values = list(row)
    values[-1] = json.loads(values[-1]) if values[-1] else []
    return DeviceRow(*values)


def choices(db: Connection, sites: set[str] | None) -> tuple[list[str], list[str]]:
    """The sites and devices a filter can offer."""
    known = devices(db, sites)
    return sorted({d.site for d in known}), sorted({d.device for d in known})


def alert_counts(db: Connection) -> list[tuple[int, str, int]]:
    """(level, state, count) over every alert stored, for /metrics."""
    return [(int(level), str(state), int(count)) for level, state, count in db.query(
        "SELECT level, state, count(*) FROM alerts GROUP BY level, state")]
