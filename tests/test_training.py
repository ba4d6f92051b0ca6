"""Training smoke test on a tiny synthetic data set: the export loads unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch", reason="the optional extra 'train' (PyTorch) is not installed")

from edge.core.emotions import BASIC_EMOTIONS
from edge.core.errors import EdgeError
from edge.core.manifest import load_manifest
from edge.inference import open_engine
from edge.training.nets import build, count_layers
from edge.training.train import find_images, scale_saturation
from edge.vision.emotion import ExpressionClassifier

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))


def make_dataset(root: Path, per_class: int = 6) -> Path:
    """7 folders (in an order unlike FER2013's) of 40x40 images, one pattern per class."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(sorted(BASIC_EMOTIONS)):
        folder = root / name.upper()  # folder names are matched case-insensitively
        folder.mkdir(parents=True)
        for k in range(per_class):
            image = np.full((40, 40, 3), 30 + 30 * index, np.uint8)
            cv2.circle(image, (20, 20), 4 + 2 * index, (200, 80 + 20 * k, 40), -1)
            image = np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{k}.png"), image)
    return root


def test_vgg16_is_the_studys_shape() -> None:
    assert count_layers(build("vgg16", 3, 7)) == (13, 3)


def test_saturation_augmentation_scales_s_only() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[:] = (40, 80, 160)  # BGR: a saturated orange-brown
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    doubled = cv2.cvtColor(scale_saturation(image, 0.5), cv2.COLOR_BGR2HSV)
    assert abs(int(doubled[0, 0, 1]) - int(hsv[0, 0, 1]) // 2) <= 2
    assert abs(int(doubled[0, 0, 2]) - int(hsv[0, 0, 2])) <= 2  # value unchanged


def test_data_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgeError, match="no such data folder"):
        find_images(tmp_path / "absent")
    (tmp_path / "happy").mkdir()
    (tmp_path / "joy").mkdir()
    with pytest.raises(EdgeError, match=r"unknown: \['joy'\]"):
        find_images(tmp_path)


@pytest.mark.parametrize("architecture", ["vgg16", "mobilenet", "resnet50"])
def test_train_export_and_load_through_the_appliance(tmp_path: Path, architecture: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from train_emotion import main

    data = make_dataset(tmp_path / "data")
    models = tmp_path / "engines"
    assert main([str(data), "--arch", architecture, "--epochs", "2", "--size", "32",
                 "--width", "0.125", "--batch", "8", "--max-steps", "3",
                 "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "recall" in out and "overall accuracy" in out
    entry = load_manifest(models).models[f"{architecture}-expression"]
    assert entry.labels == sorted(BASIC_EMOTIONS)  # the model's order, not FER2013's
    assert (models / f"{architecture}-expression-training.png").stat().st_size > 5000
    classifier = ExpressionClassifier(open_engine(models, entry), entry)
    crops = [cv2.imread(str(p)) for p in sorted((data / "HAPPY").iterdir())[:3]]
    probabilities = classifier.probabilities(crops)
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert classifier.vectors(crops).shape == (3, 10)
