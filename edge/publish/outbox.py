"""Turn risk grades into outbox messages, committed before anything is sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from edge.core.logs import get_logger
from edge.core.records import OutboxMessage, RiskGrade
from edge.publish.payload import RiskAlert
from edge.publish.pseudonym import alert_id, pseudonym, rotation_period
from edge.publish.topics import Topics
from edge.settings import Settings
from edge.store import Store


def alerts_for(grades: Sequence[RiskGrade], settings: Settings, key: bytes,
               now: datetime) -> list[OutboxMessage]:
    """Messages for the grades worth publishing: graded hours at or above ``mqtt.min_level``.

    "Insufficient history" is never published; with ``min_level`` 1 (the default) neither is
    "No risk", so an ordinary hour tells the central side nothing, not even that the
    person was there.
    """
    topics = Topics(settings.mqtt.topic_prefix, settings.device.site, settings.device.id)
    messages = []
    for grade in grades:
        if grade.status != "graded" or grade.level < settings.mqtt.min_level:
            continue
        alias = pseudonym(grade.person_id, key,
                          rotation_period(grade.hour_start, settings.mqtt.pseudonym_rotation))
        alert = RiskAlert.from_grade(
            grade, device=settings.device.id, site=settings.device.site, pseudonym=alias,
            message_id=alert_id(key, settings.device.id, grade.person_id, grade.hour_start))
        messages.append(OutboxMessage(alert.message_id, grade.person_id, topics.risk(alias),
                                      alert.encode(), now))
    return messages


def queue_alerts(store: Store, grades: Sequence[RiskGrade], settings: Settings, key: bytes,
                 now: datetime) -> tuple[int, int]:
    """Commit the grades' alerts to the outbox. Returns (queued, dropped by the bounds)."""
    messages = alerts_for(grades, settings, key, now)
    if not messages:
        return 0, 0
    dropped = store.enqueue(messages, max_messages=settings.mqtt.outbox_max_messages)
    if dropped:
        get_logger(__name__).warning("alerts_dropped", dropped=dropped,
                                     reason="outbox bound reached (mqtt.outbox_max_messages)")
    return len(messages), dropped
