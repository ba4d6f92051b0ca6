"""Records of the analytical stages: hourly vectors, partial hours, risk grades."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from edge.vision.records import COMPONENTS

NEGATIVE_GROUP = ("sad", "angry", "fear", "negative")      # fires above mean + 3 sd
POSITIVE_GROUP = ("happy", "surprise", "positive")         # fires below mean - 3 sd
COMPLEX_GROUP = ("disgust", "neutral", "complex")          # fires above mean + 3 sd
assert sorted(NEGATIVE_GROUP + POSITIVE_GROUP + COMPLEX_GROUP) == sorted(COMPONENTS)

NO_RISK = "No risk"
INSUFFICIENT_HISTORY = "Insufficient history"  # too early to judge: never shown as "No risk"
RISK_LABELS = (NO_RISK, "Low risk", "Medium risk", "High risk")


def utc_text(moment: datetime) -> str:
    """The store's sortable text form of a UTC instant: 2026-11-24T09:00:00Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class HourlyVector:
    """A person's mean 10-D vector over one clock hour (hour_start is UTC)."""

    person_id: str
    hour_start: datetime
    vector: np.ndarray  # (10,) in COMPONENTS order
    faces: int


@dataclass
class PartialHour:
    """The running sum of an hour that has not closed yet (survives restarts)."""

    person_id: str
    hour_start: datetime
    total: np.ndarray = field(default_factory=lambda: np.zeros(len(COMPONENTS)))
    faces: int = 0

    def add(self, vector: np.ndarray) -> None:
        self.total += vector
        self.faces += 1

    def mean(self) -> np.ndarray:
        return (self.total / max(self.faces, 1)).astype(np.float32)


@dataclass(frozen=True)
class RiskGrade:
    """The grade of one closed hour, kept on the device for audit.

    status "insufficient_history" means too few hours to judge: not the same as no risk.
    ``fired`` lists the components past 3 sigma even when the LOF gate held the level at 0.
    """

    person_id: str
    hour_start: datetime
    status: str                  # "graded" | "insufficient_history"
    level: int                   # 0..10
    label: str
    lof_score: float | None
    anomaly: bool
    fired: tuple[str, ...]
    history_hours: int
