"""The attribution benchmark's parts, and its goals on a short crowd clip: every analysed face
is the person it is filed under, and no stranger is analysed."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from edge.demos import crowd
from edge.demos.attribution import gallery_for, score_clip
from edge.settings import Settings
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cast(vision_models: VisionModels) -> list[crowd.CrowdActor]:
    return crowd.actors(vision_models)


def test_the_truth_knows_who_covers_whom(cast: list[crowd.CrowdActor]) -> None:
    first, second = cast[0], cast[2]
    alone = crowd.Appearance(first, 0.0, 10.0, (200, 240), (200, 240), (150, 150), 1.0)
    _frame, (truth,) = crowd.render([alone], 0)
    assert truth.actor == first.name and truth.visible == 1.0
    cover = crowd.Appearance(second, 0.0, 10.0, (230, 240), (230, 240), (150, 150), 1.0)
    _frame, (under, over) = crowd.render([alone, cover], 0)  # drawn later: on top
    assert under.visible < 0.5 and over.visible == 1.0
    half_out = replace(alone, start=(0, 240), end=(0, 240))
    _frame, (cut,) = crowd.render([half_out], 0)
    assert 0.0 < cut.visible < 0.9


def test_enrolment_photos_are_not_the_clip(cast: list[crowd.CrowdActor]) -> None:
    """Enrolled from other renderings, so a match in the clip is recognition, not a copy:
    brought to the clip tile's size, every enrolment photo still differs from the tile."""
    for actor in (a for a in cast if a.enrolled):
        for photo in crowd.enrolment_photos(actor):
            same_size = cv2.resize(photo, actor.image.shape[1::-1], interpolation=cv2.INTER_AREA)
            difference = np.abs(same_size.astype(np.int16) - actor.image.astype(np.int16))
            assert difference.mean() > 5, actor.name
        # the control: the tile itself, resampled the same way, is the clip
        again = cv2.resize(cv2.resize(actor.image, (200, 200)), actor.image.shape[1::-1],
                           interpolation=cv2.INTER_AREA)
        assert np.abs(again.astype(np.int16) - actor.image.astype(np.int16)).mean() < 5


def test_a_crowd_clip_is_attributed_right(vision_models: VisionModels, settings: Settings,
                                          cast: list[crowd.CrowdActor]) -> None:
    gallery = gallery_for(vision_models, cast, settings.identity.threshold)
    score = score_clip(vision_models, settings, cast, gallery, in_view=6, seconds=5.0, seed=8)
    print(f"\n6 in view, 5 s: {score}, recall {score.recall:.1%}")
    assert score.visible_enrolled > 100 and score.right > 100
    assert score.wrong == 0 and score.breach == 0 and score.stray == 0
    assert score.recall >= 0.8


def test_the_score_counts_a_breach(vision_models: VisionModels, settings: Settings,
                                   cast: list[crowd.CrowdActor]) -> None:
    """The control: a stranger enrolled under an enrolled person's name (a mix-up at
    enrolment) is analysed, and the score calls each of those faces a breach."""
    stranger = next(a.actor for a in crowd.plan(cast, 3, 8.0, 8) if not a.actor.enrolled)
    tile = np.full((480, 640, 3), 96, np.uint8)
    tile[90:390, 170:470] = cv2.resize(stranger.image, (300, 300))
    ((_face, descriptor),) = vision_models.describe(tile)
    gallery = Gallery(["lfw-00"], descriptor[None], settings.identity.threshold)
    score = score_clip(vision_models, settings, cast, gallery, in_view=3, seconds=8.0, seed=8)
    assert score.breach > 0


def test_a_detection_is_paired_with_the_face_that_shows() -> None:
    """A hidden face behind the one detected is not what was detected; a face leaving the
    frame is paired by its part inside the frame, as the detector sees it."""
    from edge.demos.attribution import pair_with_truth

    hidden = crowd.FaceTruth("stranger-01", False, np.array([100, 100, 160, 160.]), 0.0)
    shown = crowd.FaceTruth("lfw-00", True, np.array([102, 100, 162, 160.]), 1.0)
    assert pair_with_truth([np.array([101, 100, 161, 160.])], [hidden, shown]) == {0: 1}
    leaving = crowd.FaceTruth("astronaut", True, np.array([600, 200, 680, 280.]), 0.5)
    assert pair_with_truth([np.array([600, 200, 640, 280.])], [leaving]) == {0: 0}
    assert pair_with_truth([np.array([10, 10, 50, 50.])], [leaving]) == {}  # no face there
