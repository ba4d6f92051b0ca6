"""Identity: dlib's 128-D descriptor and a gallery of enrolled templates.

Matching is one matrix product of L2-normalised descriptors (cosine similarity) followed
by a per-person maximum, so a person may have several templates (glasses, lighting).
The descriptor is the expensive step (about 58 ms a face on 2 CPU cores): the service
computes it once per face track, not per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dlib
import numpy as np

from edge.core.errors import ModelError
from edge.core.records import Match

DESCRIPTOR_DIM = 128


class FaceEncoder:
    def __init__(self, model_path: Path) -> None:
        if not model_path.is_file():
            raise ModelError(f"{model_path}: descriptor model missing",
                             "run `edge models prepare`")
        try:
            self.model = dlib.face_recognition_model_v1(str(model_path))
        except RuntimeError as exc:  # dlib's deserialisation error: not a descriptor model
            raise ModelError(f"{model_path}: dlib cannot load it ({str(exc)[:120]})",
                             "run `edge models prepare --force`") from None

    def encode(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 descriptors of 150x150 RGB chips from the aligner."""
        if not chips:
            return np.zeros((0, DESCRIPTOR_DIM), np.float32)
        vectors = self.model.compute_face_descriptor(list(chips))
        return np.asarray([np.asarray(v) for v in vectors], np.float32)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class Gallery:
    """Enrolled templates, matched by cosine similarity against a threshold."""

    def __init__(self, person_ids: Sequence[str], templates: np.ndarray,
                 threshold: float) -> None:
        templates = np.asarray(templates, np.float32).reshape(-1, DESCRIPTOR_DIM)
        if len(person_ids) != len(templates):
            raise ValueError("one person id per template")
        self.threshold = threshold
        self.people = sorted(set(person_ids))
        self._owner = np.array([self.people.index(p) for p in person_ids], np.int64)
        self._templates = normalise(templates)

    def __len__(self) -> int:
        return len(self._templates)

    def similarities(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, people) best cosine similarity of each face with each enrolled person."""
        descriptors = normalise(np.asarray(descriptors, np.float32).reshape(-1, DESCRIPTOR_DIM))
        per_template = descriptors @ self._templates.T
        best = np.full((len(descriptors), len(self.people)), -1.0, np.float32)
        np.maximum.at(best.T, self._owner, per_template.T)  # best template per person
        return best

    def match(self, descriptors: np.ndarray) -> list[Match]:
        if len(self.people) == 0:
            return [Match(None, -1.0, -1.0) for _ in range(len(descriptors))]
        scores = self.similarities(descriptors)
        matches = []
        for row in scores:
            order = np.argsort(-row)
            best = float(row[order[0]])
            runner_up = float(row[order[1]]) if len(order) > 1 else -1.0
            person = self.people[order[0]] if best >= self.threshold else None
            matches.append(Match(person, best, runner_up, self.people[order[0]]))
        return matches
