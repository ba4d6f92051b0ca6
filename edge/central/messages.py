"""What arrives on the devices' topics, checked before anything is stored.

Every message becomes exactly one of: an alert, an availability change, a stats report, or
a rejection with its reason. A rejection is counted and logged by the collector, never
stored as an alert, never a crash: anyone who can publish on the broker can send anything.

The checks, cheapest first: the size (before any parsing), the topic's shape, then the
payload against the same pydantic models the devices publish with, in strict mode (a level
sent as the text "3" is wrong, not coerced), then the topic against the payload (an alert
on site A's topic that says it is from site B is refused: ACLs are per topic).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from edge.publish.payload import STATUS_OFFLINE, STATUS_ONLINE, DeviceStats, RiskAlert


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    received_at: float  # seconds since the epoch, the collector's clock
    reason: str | None = None  # the status message's MQTT 5 `reason` user property


@dataclass(frozen=True)
class AlertMessage:
    alert: RiskAlert
    received_at: float


@dataclass(frozen=True)
class AvailabilityMessage:
    site: str
    device: str
    online: bool
    reason: str | None
    received_at: float


@dataclass(frozen=True)
class StatsMessage:
    stats: DeviceStats
    received_at: float


@dataclass(frozen=True)
class Rejection:
    topic: str
    reason: str  # one of REJECTION_REASONS
    detail: str
    size: int


REJECTION_REASONS = ("oversized", "unknown_topic", "malformed", "wrong_type", "mismatch")
Message = AlertMessage | AvailabilityMessage | StatsMessage | Rejection


def parse(incoming: Incoming, prefix: str, max_bytes: int) -> Message:
    """The one reading of a message from the topics ``<prefix>/<site>/<device>/...``."""
    topic, payload = incoming.topic, incoming.payload
    if len(payload) > max_bytes:
        return Rejection(topic, "oversized", f"{len(payload)} bytes > {max_bytes}", len(payload))
    parts = topic.removeprefix(prefix + "/").split("/") if topic.startswith(prefix + "/") \
        else []
    kind = parts[2] if len(parts) >= 3 else ""
    shapes = {"status": 3, "stats": 3, "risk": 4}
    if kind not in shapes or len(parts) != shapes[kind] or not all(parts):
        return Rejection(topic, "unknown_topic", "not <prefix>/<site>/<device>/"
                         "{status,stats,risk/<pseudonym>}", len(payload))
    site, device = parts[0], parts[1]
    if kind == "status":
        if payload not in (STATUS_ONLINE, STATUS_OFFLINE):
            return Rejection(topic, "malformed", "status is neither online nor offline",
                             len(payload))
        return AvailabilityMessage(site, device, payload == STATUS_ONLINE,
                                   incoming.reason, incoming.received_at)
    model = RiskAlert if kind == "risk" else DeviceStats
    try:
        record = model.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return Rejection(topic, "malformed", f"not JSON: {first['msg']}", len(payload))
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        return Rejection(topic, "wrong_type", f"{where}: {first['msg']}", len(payload))
    if (record.site, record.device) != (site, device) or (
            isinstance(record, RiskAlert) and record.person != parts[3]):
        return Rejection(topic, "mismatch", "the payload's site, device or person is not "
                         "the topic's", len(payload))
    if isinstance(record, RiskAlert):
        return AlertMessage(record, incoming.received_at)
    return StatsMessage(record, incoming.received_at)
