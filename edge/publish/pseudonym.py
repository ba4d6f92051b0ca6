"""Pseudonymous ids for the wire: a keyed hash (HMAC-SHA256) of the local person id.

Without the device key the id cannot be reversed or matched across devices. It also
rotates: the hash covers the period the alert's hour falls in (``mqtt.pseudonym_rotation``:
daily, weekly by default, monthly, or never), so the central side can follow one person
within a period but cannot link periods into a long profile. Changing the key (the
``pseudonym-key`` credential) rotates every id at once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

PSEUDONYM_HEX = 16  # 64 bits: collisions negligible for any team a box can see


def rotation_period(moment: datetime, rotation: str) -> str:
    """The label of the period ``moment`` falls in: '2026-11-24', '2026-W48', '2026-11', ''."""
    utc = moment.astimezone(timezone.utc)
    if rotation == "daily":
        return utc.strftime("%Y-%m-%d")
    if rotation == "weekly":
        year, week, _ = utc.isocalendar()
        return f"{year}-W{week:02d}"
    if rotation == "monthly":
        return utc.strftime("%Y-%m")
    return ""


def pseudonym(person_id: str, key: bytes, period: str = "") -> str:
    message = f"{period}|{person_id}" if period else person_id
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def alert_id(key: bytes, device: str, person_id: str, hour_start: datetime) -> str:
    """The message id of the alert about one person's hour on one device: the same every time
    that hour is alerted, so a resend (or a re-grade after a crash) is recognisably the same
    alert. Keyed like the pseudonym: a staff number cannot be guessed from it."""
    message = f"alert|{device}|{person_id}|{hour_start.astimezone(timezone.utc).isoformat()}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:32]


def periods_between(start: datetime, end: datetime, rotation: str) -> list[str]:
    """The rotation periods that the instants from ``start`` to ``end`` fall in, newest first."""
    periods: list[str] = []
    moment = end
    while moment >= start - timedelta(days=1):
        period = rotation_period(moment, rotation)
        if period not in periods:
            periods.append(period)
        moment -= timedelta(days=1)
    return periods


def resolve(alias: str, person_ids: Iterable[str], key: bytes,
            periods: Iterable[str]) -> tuple[str, str] | None:
    """Who is behind ``alias`` in one of ``periods``: (person id, period), or None. Only the
    device can answer: it alone holds the key and the enrolled ids."""
    wanted = alias.lower()
    candidates = list(person_ids)
    for period in periods:
        for person_id in candidates:
            if hmac.compare_digest(pseudonym(person_id, key, period), wanted):
                return person_id, period
    return None
