"""Expression: any 7-class model described by the manifest, turned into the 10-D vector.

The model's label order is read from the manifest and mapped by name, so a classifier
trained with its classes in another order (the study's VGG16, say) works unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.core.emotions import BASIC_EMOTIONS, COMPONENTS, GROUPS
from edge.core.errors import ModelError
from edge.core.manifest import ModelEntry
from edge.inference.base import Engine
from edge.vision.preprocess import crops_batch

_GROUP_INDEX = {name: [BASIC_EMOTIONS.index(m) for m in members]
                for name, members in GROUPS.items()}


def emotion_vectors(probabilities: np.ndarray) -> np.ndarray:
    """(N, 7) probabilities in BASIC_EMOTIONS order -> (N, 10) vectors in COMPONENTS order."""
    probabilities = np.asarray(probabilities, np.float32).reshape(-1, len(BASIC_EMOTIONS))
    groups = [probabilities[:, idx].sum(axis=1) for idx in _GROUP_INDEX.values()]
    vectors = np.column_stack([probabilities, *groups]).astype(np.float32)
    assert vectors.shape[1] == len(COMPONENTS)
    return vectors


class ExpressionClassifier:
    def __init__(self, engine: Engine, model: ModelEntry) -> None:
        if model.input is None or not model.labels or not model.outputs:
            raise ModelError(f"{model.name}: manifest entry lacks input, outputs or labels")
        labels = [label.lower() for label in model.labels]
        missing = sorted(set(BASIC_EMOTIONS) - set(labels))
        if missing or len(labels) != len(BASIC_EMOTIONS):
            raise ModelError(f"{model.name}: labels {model.labels} must be exactly the 7 classes "
                             f"{list(BASIC_EMOTIONS)} in any order (missing: {missing})")
        width, height = model.input.width, model.input.height
        if height is None or width is None:
            raise ModelError(f"{model.name}: the manifest must give the input height and width")
        self.engine = engine
        self.spec = model.input
        self.output = model.outputs[0]
        # column j of our order comes from the model's column _order[j]
        self._order = np.array([labels.index(name) for name in BASIC_EMOTIONS])
        self.input_size = (width, height)

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return crops_batch(crops, self.spec)

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 7) class probabilities in BASIC_EMOTIONS order for BGR face crops."""
        if not crops:
            return np.zeros((0, len(BASIC_EMOTIONS)), np.float32)
        raw = self.engine.run_batched({self.spec.name: self.preprocess(crops)},
                                      [self.output])[self.output].reshape(len(crops), -1)
        if not np.allclose(raw.sum(axis=1), 1.0, atol=1e-3) or raw.min() < 0:
            # a model exported without its softmax gives logits (SciPy is imported here only:
            # the shipped model gives probabilities, and the import costs ~20 MB)
            from scipy.special import softmax

            raw = softmax(raw, axis=1)
        return raw[:, self._order]

    def vectors(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 10) emotion vectors for BGR face crops."""
        return emotion_vectors(self.probabilities(crops))
