"""The outbox's unit: one message, committed before paho ever sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str
    person_id: str | None  # local id, kept so `edge forget` can drop queued alerts
    topic: str
    payload: bytes
    created_at: datetime
    attempts: int = 0
