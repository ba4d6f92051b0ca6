from __future__ import annotations

import numpy as np
import pytest

from edge.settings import Settings
from edge.vision import samples
from edge.vision.evidence import VARIANTS
from edge.vision.identity import Gallery
from edge.vision.pipeline import FaceAnalyzer, VisionModels


@pytest.fixture(scope="module")
def analyzer(vision_models: VisionModels) -> FaceAnalyzer:
    enrolled = {"astronaut": samples.astronaut(), "cameraman": samples.cameraman()}
    ids, templates = [], []
    for person, photo in enrolled.items():
        for change in (VARIANTS["mirror"], VARIANTS["dark x0.5"]):
            ids.append(person)
            templates.append(vision_models.describe(change(photo))[0][1])
    return FaceAnalyzer(vision_models, Gallery(ids, np.stack(templates),
                                               Settings().identity.threshold))


def test_group_scene(analyzer: FaceAnalyzer) -> None:
    (faces,) = analyzer.analyze([samples.group_scene()])
    by_person = {f.person_id: f for f in faces}
    assert set(by_person) == {"astronaut", "cameraman", None}
    stranger = by_person[None]
    assert stranger.vector is None  # dropped: no expression computed for a stranger
    for person in ("astronaut", "cameraman"):
        vector = by_person[person].vector
        assert vector is not None and vector.shape == (10,)
        assert vector[:7].sum() == pytest.approx(1.0, abs=1e-4)
    assert by_person["astronaut"].vector[0] > 0.9  # happy


def test_batch_of_frames_keeps_frame_order(analyzer: FaceAnalyzer) -> None:
    empty = np.full((480, 640, 3), 128, np.uint8)
    results = analyzer.analyze([samples.cameraman(), empty, samples.astronaut()])
    assert [[f.person_id for f in frame] for frame in results] == [["cameraman"], [],
                                                                   ["astronaut"]]


def test_nobody_enrolled_means_nothing_analysed(vision_models: VisionModels) -> None:
    analyzer = FaceAnalyzer(vision_models, Gallery([], np.zeros((0, 128), np.float32), 0.95))
    (faces,) = analyzer.analyze([samples.astronaut()])
    assert len(faces) == 1 and faces[0].person_id is None and faces[0].vector is None
