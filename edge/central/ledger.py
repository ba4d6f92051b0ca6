"""The collector's writes: what arrived, and what people did about it.

Idempotent by construction: an alert's message id is its primary key and a copy is
skipped (``ON CONFLICT DO NOTHING``), so a resent alert is stored once however often the
broker or a device repeats it. A device row is an upsert keyed by (site, device).

An alert's state moves open -> acknowledged -> resolved; each move is a row in
``alert_actions`` (who, when, what, the note) in the same transaction, and rows there are
never changed or deleted: that table is the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from edge.central.database import Connection
from edge.central.messages import AlertMessage, AvailabilityMessage, Message, StatsMessage
from edge.core.errors import EdgeError

ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved"}


@dataclass
class Written:
    alerts: int = 0  # new alerts stored
    duplicates: int = 0  # copies of alerts already stored
    availability: int = 0
    stats: int = 0


def record(db: Connection, messages: Sequence[Message], received_by: str) -> Written:
    """Store a batch in one transaction; rejections are the caller's to count.
    ``received_by``: the collector replica (its client id) that took the batch."""
    written = Written()
    with db.transaction():
        for message in messages:
            if isinstance(message, AlertMessage):
                if _store_alert(db, message, received_by):
                    written.alerts += 1
                else:
                    written.duplicates += 1
            elif isinstance(message, AvailabilityMessage):
                _store_availability(db, message)
                written.availability += 1
            elif isinstance(message, StatsMessage):
                _store_stats(db, message)
                written.stats += 1
    return written


def _store_alert(db: Connection, message: AlertMessage, received_by: str) -> bool:
    alert = message.alert
    new = db.execute(
        "INSERT INTO alerts (message_id, site, device, person, hour_start, hour_end, level, "
        "label, anomaly, received_at, received_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (message_id) DO NOTHING",
        (alert.message_id, alert.site, alert.device, alert.person, alert.hour_start,
         alert.hour_end, alert.level, alert.label, int(alert.anomaly), message.received_at,
         received_by))
    _seen(db, alert.site, alert.device, message.received_at)
    return new == 1


def _seen(db: Connection, site: str, device: str, at: float) -> None:
    db.execute("INSERT INTO devices (site, device, last_seen) VALUES (?, ?, ?) "
               "ON CONFLICT (site, device) DO UPDATE SET last_seen = excluded.last_seen "
               "WHERE devices.last_seen < excluded.last_seen", (site, device, at))


def _store_availability(db: Connection, message: AvailabilityMessage) -> None:
    db.execute(
        "INSERT INTO devices (site, device, availability, reason, availability_at, last_seen) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site, device) DO UPDATE SET "
        "availability = excluded.availability, reason = excluded.reason, "
        "availability_at = excluded.availability_at, last_seen = excluded.last_seen",
        (message.site, message.device, "online" if message.online else "offline",
         message.reason, message.received_at, message.received_at))


def _store_stats(db: Connection, message: StatsMessage) -> None:
    stats = message.stats
    db.execute(
        "INSERT INTO devices (site, device, last_seen, stats_at, uptime_s, frames_per_s, "
        "outbox_depth, temperature_c, camera_reconnects, faults) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, device) DO UPDATE SET "
        "last_seen = excluded.last_seen, stats_at = excluded.stats_at, "
        "uptime_s = excluded.uptime_s, frames_per_s = excluded.frames_per_s, "
        "outbox_depth = excluded.outbox_depth, temperature_c = excluded.temperature_c, "
        "camera_reconnects = excluded.camera_reconnects, faults = excluded.faults",
        (stats.site, stats.device, message.received_at, message.received_at, stats.uptime_s,
         stats.frames_per_s, stats.outbox_depth, stats.temperature_c, stats.camera_reconnects,
         json.dumps(stats.faults)))


def act(db: Connection, message_id: str, action: str, note: str, actor: str,
        at: float) -> str:
    """Acknowledge or resolve an alert, with the audit row; the alert's state now."""
    if action not in ACTIONS:
        raise EdgeError(f"unknown action {action!r}", "acknowledge or resolve")
    state = ACTIONS[action]
    with db.transaction():
        current = db.scalar("SELECT state FROM alerts WHERE message_id = ?", (message_id,))
        if current is None:
            raise EdgeError(f"no alert {message_id}")
        if current == "resolved":
            raise EdgeError(f"alert {message_id} is already resolved")
        db.execute("UPDATE alerts SET state = ? WHERE message_id = ?", (state, message_id))
        db.execute("INSERT INTO alert_actions (message_id, action, note, actor, at) "
                   "VALUES (?, ?, ?, ?, ?)", (message_id, action, note, actor, at))
    return state
