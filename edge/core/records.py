"""The records that flow down the appliance, in the order they are made.

Frame -> ``Detections`` (vectorised, one per frame) -> ``FaceRecord`` (one per face, the
only thing the stages pass each other after detection) -> ``HourlyVector`` ->
``RiskGrade`` -> ``OutboxMessage``. They sit at the bottom of the package so that every
stage that makes or reads one imports downwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from edge.core.emotions import COMPONENTS


# --- vision ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detections:
    """All faces found in one frame, vectorised (the shape ``supervision`` made popular).

    boxes: (N, 4) float32 x1, y1, x2, y2 in frame pixels; scores: (N,);
    landmarks: (N, 5, 2): two eyes (image-left first), nose, two mouth corners.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index: np.ndarray | slice | list[int]) -> Detections:
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index])


@dataclass(frozen=True)
class AlignedFace:
    """One face made upright. Holds pixels: it must not outlive the frame's processing."""

    angle_deg: float           # eye-line angle that was removed
    landmarks: np.ndarray      # (68 or 5, 2) in frame pixels
    chip: np.ndarray           # 150x150 BGR chip aligned by dlib, for the descriptor
    crop: np.ndarray           # square upright BGR face crop for the expression model


@dataclass(frozen=True)
class Match:
    person_id: str | None      # None: nobody enrolled is similar enough
    similarity: float          # best cosine similarity (with person_id's closest template)
    runner_up: float           # best similarity with anybody else (ambiguity check)
    nearest: str | None = None  # the most similar person, even below the threshold


@dataclass(frozen=True)
class FaceRecord:
    """One face in one frame, filled in stage by stage (``dataclasses.replace``).

    detection -> track (``track_id``, when the pipeline tracks) -> alignment (``aligned``,
    where identity needs a descriptor; else ``crop`` alone, where only the expression
    needs the face) -> identity (``person_id``, ``similarity``) -> expression (``vector``,
    only for an enrolled person). The frame pipeline hands a record out only after
    clearing ``aligned`` and ``crop``: no pixels of any face, known or not, outlive
    the frame, and an unknown face never gets a vector.
    """

    detection_index: int
    box: np.ndarray            # (4,) float32 x1, y1, x2, y2 in frame pixels
    score: float
    landmarks: np.ndarray      # (5, 2) the detector's points
    track_id: int | None = None
    aligned: AlignedFace | None = None
    crop: np.ndarray | None = None  # the expression crop alone, for a face not aligned
    person_id: str | None = None
    similarity: float = -1.0   # of the identity in force (a track's may come from earlier)
    vector: np.ndarray | None = None  # (10,) in COMPONENTS order, only for enrolled people

    @classmethod
    def from_detections(cls, detections: Detections) -> list[FaceRecord]:
        return [cls(i, detections.boxes[i], float(detections.scores[i]),
                    detections.landmarks[i]) for i in range(len(detections))]


# --- analytics ---------------------------------------------------------------------------------
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


# --- publishing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutboxMessage:
    """The outbox's unit: one message, committed before paho ever sees it."""

    message_id: str
    person_id: str | None  # local id, kept so `edge forget` can drop queued alerts
    topic: str
    payload: bytes
    created_at: datetime
    attempts: int = 0
