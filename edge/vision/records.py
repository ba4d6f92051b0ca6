"""Small immutable records passed between the vision stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The 10-D emotion vector: 7 class probabilities, then three group sums.
COMPONENTS = ("happy", "sad", "angry", "disgust", "fear", "surprise", "neutral",
              "positive", "negative", "complex")
BASIC_EMOTIONS = COMPONENTS[:7]
GROUPS = {
    "positive": ("happy", "surprise"),
    "negative": ("sad", "angry", "fear"),
    "complex": ("disgust", "neutral"),
}


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

    detection_index: int
    angle_deg: float           # eye-line angle that was removed
    landmarks: np.ndarray      # (68 or 5, 2) in frame pixels
    chip: np.ndarray           # 150x150 RGB chip aligned by dlib, for the descriptor
    crop: np.ndarray           # square upright BGR face crop for the expression model


@dataclass(frozen=True)
class Match:
    person_id: str | None      # None: nobody enrolled is similar enough
    similarity: float          # best cosine similarity (with person_id's closest template)
    runner_up: float           # best similarity with anybody else (ambiguity check)
    nearest: str | None = None  # the most similar person, even below the threshold


@dataclass(frozen=True)
class FaceResult:
    """What the pipeline reports for one face. Unknown faces carry no vector."""

    box: tuple[float, float, float, float]
    score: float
    person_id: str | None
    similarity: float
    vector: np.ndarray | None  # (10,) in COMPONENTS order, only for enrolled people
