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
from datetime import datetime, timezone

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
