from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from edge.core.emotions import BASIC_EMOTIONS, COMPONENTS
from edge.core.errors import ModelError
from edge.core.manifest import load_manifest, sha256_file
from edge.demos import samples
from edge.inference import open_engine
from edge.vision.emotion import ExpressionClassifier, emotion_vectors
from edge.vision.loader import VisionModels


def test_vector_layout_hand_computed() -> None:
    # happy sad angry disgust fear surprise neutral
    probabilities = np.array([[0.1, 0.2, 0.05, 0.05, 0.3, 0.2, 0.1]])
    vector = emotion_vectors(probabilities)[0]
    assert COMPONENTS[7:] == ("positive", "negative", "complex")
    np.testing.assert_allclose(vector[:7], probabilities[0], rtol=1e-6)
    np.testing.assert_allclose(vector[7:], [0.3, 0.55, 0.15], rtol=1e-6)


@given(st.lists(st.floats(0.001, 1.0), min_size=7, max_size=7))
def test_vector_sums(weights: list[float]) -> None:
    probabilities = np.array(weights) / np.sum(weights)
    vector = emotion_vectors(probabilities[None])[0]
    assert vector[:7].sum() == pytest.approx(1.0, abs=1e-5)
    assert vector[7:].sum() == pytest.approx(1.0, abs=1e-5)  # the groups partition the 7
    index = {name: i for i, name in enumerate(COMPONENTS)}
    assert vector[index["negative"]] == pytest.approx(
        vector[index["sad"]] + vector[index["angry"]] + vector[index["fear"]], abs=1e-6)


def _wrapped_model(models_dir: Path, tmp_path: Path, permutation: list[int],
                   as_logits: bool) -> Path:
    """The shipped model with its output columns permuted (and optionally log-ed)."""
    model = onnx.load(str(models_dir / "fer_mini_xception.onnx"))
    graph = model.graph
    graph.output[0].name = "permuted"
    graph.initializer.append(numpy_helper.from_array(np.array(permutation, np.int64), "perm"))
    graph.node.append(helper.make_node("Gather", ["probabilities", "perm"],
                                       ["gathered" if as_logits else "permuted"], axis=1))
    if as_logits:
        graph.node.append(helper.make_node("Log", ["gathered"], ["permuted"]))
    path = tmp_path / "permuted.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("as_logits", [False, True])
def test_label_order_is_mapped_by_name(models_dir: Path, tmp_path: Path,
                                       vision_models: VisionModels, as_logits: bool) -> None:
    """A model with its classes in another order (and logits) gives the same vector."""
    entry = load_manifest(models_dir).models["fer-mini-xception"]
    permutation = [6, 3, 0, 5, 1, 4, 2]
    path = _wrapped_model(models_dir, tmp_path, permutation, as_logits)
    other = entry.model_copy(update={
        "file": path.name, "sha256": sha256_file(path), "outputs": ["permuted"],
        "labels": [entry.labels[i] for i in permutation]})
    classifier = ExpressionClassifier(open_engine(tmp_path, other), other)
    image = samples.group_scene()
    crops = [f.crop for f in vision_models.aligner.align(
        image, vision_models.detector.detect([image])[0])]
    np.testing.assert_allclose(classifier.vectors(crops),
                               vision_models.classifier.vectors(crops), atol=1e-5)


def test_labels_must_be_the_seven_classes(models_dir: Path) -> None:
    entry = load_manifest(models_dir).models["fer-mini-xception"]
    broken = entry.model_copy(update={"labels": ["joy", *entry.labels[1:]]})
    with pytest.raises(ModelError, match="must be exactly the 7 classes"):
        ExpressionClassifier(open_engine(models_dir, entry), broken)


def test_smiling_astronaut_is_happy(vision_models: VisionModels) -> None:
    photo = samples.astronaut()
    face = vision_models.aligner.align(photo, vision_models.detector.detect([photo])[0])[0]
    vector = vision_models.classifier.vectors([face.crop])[0]
    assert BASIC_EMOTIONS[int(np.argmax(vector[:7]))] == "happy"
    assert vector[COMPONENTS.index("positive")] > 0.9
    assert vision_models.classifier.vectors([]).shape == (0, 10)
