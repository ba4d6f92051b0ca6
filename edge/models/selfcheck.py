"""Prove the prepared models work together on a real face before anyone relies on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.core.emotions import BASIC_EMOTIONS
from edge.core.errors import ModelError
from edge.demos.samples import astronaut
from edge.settings import ModelsSettings, Settings
from edge.vision.loader import VisionModels


def self_check(models_dir: Path) -> str:
    """Detector finds exactly one face, expression says happy, descriptor is sane."""
    settings = Settings(models=ModelsSettings(dir=models_dir))
    models = VisionModels.load(settings)
    try:
        image = astronaut()
        detections = models.detector.detect([image])[0]
        if len(detections) != 1:
            raise ModelError(f"self-check: the detector found {len(detections)} faces in the "
                             "astronaut photo, expected 1", "run `edge models prepare --force`")
        face = models.aligner.align(image, detections)[0]
        probabilities = models.classifier.probabilities([face.crop])[0]
        top = BASIC_EMOTIONS[int(np.argmax(probabilities))]
        if top != "happy":
            raise ModelError(f"self-check: expression model says {top!r} for the smiling "
                             "astronaut, expected 'happy'", "run `edge models prepare --force`")
        descriptor = models.encoder.encode([face.chip])[0]
        norm = float(np.linalg.norm(descriptor))
        if not 0.2 < norm < 2.0 or not np.isfinite(descriptor).all():
            raise ModelError(f"self-check: descriptor norm {norm:.3f} is implausible")
        return (f"1 face (score {detections.scores[0]:.3f}), {len(face.landmarks)} landmarks, "
                f"expression happy ({probabilities.max():.2f}), descriptor norm {norm:.2f}")
    finally:
        models.close()
