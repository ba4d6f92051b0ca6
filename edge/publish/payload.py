"""What leaves the box: versioned pydantic models, and nothing else.

A risk alert carries the level and its label for one hour of one pseudonymous person, and
the LOF flag. Never a vector, an image, a template, a name or the enrolled id: the models
forbid extra fields, and the tests fail if a payload ever holds more.

Consumers de-duplicate by ``message_id``: an alert may arrive twice (it is resent after a
reconnect or a restart when its acknowledgement was lost), never zero times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.core.clock import utc_text
from edge.core.records import RiskGrade

SCHEMA_VERSION = 1


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class RiskAlert(Payload):
    kind: Literal["risk"] = "risk"
    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    device: str
    site: str
    person: str = Field(pattern=r"^[0-9a-f]{16,64}$", description="keyed pseudonym")
    hour_start: str
    hour_end: str
    level: int = Field(ge=0, le=10)
    label: str
    anomaly: bool

    @classmethod
    def from_grade(cls, grade: RiskGrade, *, device: str, site: str, pseudonym: str,
                   message_id: str) -> RiskAlert:
        return cls(message_id=message_id, device=device, site=site, person=pseudonym,
                   hour_start=utc_text(grade.hour_start),
                   hour_end=utc_text(grade.hour_start + timedelta(hours=1)),
                   level=grade.level, label=grade.label, anomaly=grade.anomaly)


class DeviceStats(Payload):
    kind: Literal["stats"] = "stats"
    schema_version: Literal[1] = SCHEMA_VERSION
    device: str
    site: str
    at: str
    uptime_s: float
    frames_per_s: float | None = None
    faces_per_h: float | None = None
    inference_ms: float | None = None
    camera_reconnects: int | None = None
    faults: list[str] = Field(default_factory=list, description="faults in force now: "
                              "camera, storage, clock, publisher")
    outbox_depth: int
    alerts_dropped: int
    alerts_refused: int
    temperature_c: float | None = None


# Availability, as Home Assistant and Frigate read it: the retained status is `online` or
# `offline`, nothing else. Why a device is offline travels beside it, in the MQTT 5 user
# property `reason`: `stopped` (a clean stop) or `connection lost` (the will).
STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"
REASON_PROPERTY = "reason"
REASON_RUNNING = "running"
REASON_STOPPED = "stopped"
REASON_LOST = "connection lost"


def status_reason(message: object) -> str | None:
    """The `reason` user property of a received MQTT message (paho's ``MQTTMessage``);
    None without one (MQTT 3.1.1, or another publisher)."""
    properties = getattr(message, "properties", None)
    return dict(getattr(properties, "UserProperty", None) or []).get(REASON_PROPERTY)


def board_temperature_c() -> float | None:
    """Highest thermal zone reading where the board exposes one (Jetson, most PCs)."""
    from pathlib import Path

    readings = []
    for zone in Path("/sys/class/thermal").glob("thermal_zone*/temp"):
        try:
            readings.append(int(zone.read_text().strip()) / 1000)
        except (OSError, ValueError):
            continue
    return max(readings) if readings else None
