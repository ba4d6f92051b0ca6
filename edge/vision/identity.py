"""Identity: dlib's 128-D descriptor and a gallery of enrolled templates.

Matching is one matrix product of L2-normalised descriptors (cosine similarity) followed
by a per-person maximum, so a person may have several templates (glasses, lighting).
The descriptor is the expensive step (about 4 ms of CPU a face here on ONNX Runtime; dlib
itself took 78): the service computes it when a face's track needs it, not per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.core.errors import ModelError
from edge.core.manifest import ModelEntry
from edge.core.records import Match
from edge.inference.base import Engine
from edge.vision.align import CHIP_SIZE
from edge.vision.preprocess import crops_batch

DESCRIPTOR_DIM = 128


class FaceEncoder:
    """dlib's descriptor network (converted to ONNX by ``edge.models.dlib_onnx``) on any
    Engine: ONNX Runtime here, a TensorRT engine on a Jetson."""

    def __init__(self, engine: Engine, model: ModelEntry) -> None:
        spec = model.input
        if spec is None or not model.outputs or (spec.height, spec.width) != (CHIP_SIZE,
                                                                              CHIP_SIZE):
            raise ModelError(f"{model.name}: the manifest must give a {CHIP_SIZE}x{CHIP_SIZE} "
                             "input and the output of the descriptor network",
                             "run `edge models prepare`")
        self.engine = engine
        self.spec = spec
        self.output = model.outputs[0]

    def encode(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 descriptors of 150x150 BGR chips from the aligner."""
        if not chips:
            return np.zeros((0, DESCRIPTOR_DIM), np.float32)
        batch = crops_batch(chips, self.spec)
        return self.engine.run_batched({self.spec.name: batch}, [self.output])[
            self.output].reshape(len(chips), DESCRIPTOR_DIM).astype(np.float32, copy=False)


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
