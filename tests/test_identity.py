from __future__ import annotations

import numpy as np
import pytest

from edge.demos import samples
from edge.demos.evidence import IdentityEvidence, collect
from edge.settings import Settings
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(128, np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def test_gallery_takes_each_persons_best_template() -> None:
    gallery = Gallery(["ann", "bob", "ann"], np.stack([unit(1, 0), unit(0, 1), unit(0, 0, 1)]),
                      threshold=0.95)
    assert gallery.people == ["ann", "bob"]
    match = gallery.match(unit(0, 0, 1)[None])[0]  # equals ann's second template
    assert (match.person_id, match.similarity, match.runner_up) == ("ann", pytest.approx(1.0),
                                                                    pytest.approx(0.0))
    between = gallery.match(unit(1, 1)[None])[0]  # cosine 0.707 with ann and bob
    assert between.person_id is None
    assert between.similarity == pytest.approx(2 ** -0.5, abs=1e-6)


def test_threshold_is_inclusive_and_scale_free() -> None:
    gallery = Gallery(["ann"], unit(1, 0)[None] * 7.0, threshold=0.8)
    at_threshold = unit(0.8, 0.6)  # cosine exactly 0.8
    assert gallery.match((at_threshold * 3)[None])[0].person_id == "ann"
    assert gallery.match(unit(0.79, 0.61)[None])[0].person_id is None


def test_empty_gallery_knows_nobody() -> None:
    gallery = Gallery([], np.zeros((0, 128), np.float32), threshold=0.95)
    assert [m.person_id for m in gallery.match(np.stack([unit(1), unit(0, 1)]))] == [None, None]


def test_gallery_needs_one_id_per_template() -> None:
    with pytest.raises(ValueError):
        Gallery(["ann"], np.stack([unit(1), unit(0, 1)]), threshold=0.9)


@pytest.fixture(scope="module")
def evidence(vision_models: VisionModels) -> IdentityEvidence:
    return collect(vision_models)


@pytest.mark.slow
def test_default_threshold_is_backed_by_evidence(evidence: IdentityEvidence) -> None:
    threshold = Settings().identity.threshold
    false_accept, false_reject = evidence.rates(threshold)
    assert false_accept <= 0.002  # lfw_subset may hold one person twice: an upper bound
    assert false_reject <= 0.1
    assert all(v >= threshold for v in evidence.per_variant["astronaut"].values())


@pytest.mark.slow
def test_different_people_stay_below_the_threshold(vision_models: VisionModels) -> None:
    astronaut = vision_models.describe(samples.astronaut())[0][1]
    cameraman = vision_models.describe(samples.cameraman())[0][1]
    gallery = Gallery(["astronaut"], astronaut[None], threshold=Settings().identity.threshold)
    match = gallery.match(cameraman[None])[0]
    assert match.person_id is None and match.similarity < 0.9


@pytest.mark.slow
def test_dlibs_own_rule_would_admit_far_more_strangers(evidence: IdentityEvidence) -> None:
    """dlib documents a Euclidean distance below 0.6 as the same person. On lfw_subset's
    low-resolution faces that admits many strangers; the cosine threshold admits almost
    none, at a small cost in false rejects (a stranger analysed costs more)."""
    cosine_accept, cosine_reject = evidence.rates(Settings().identity.threshold)
    dlib_accept, dlib_reject = evidence.distance_rates(0.6)
    print(f"\ncosine {Settings().identity.threshold}: FA {cosine_accept:.4f} FR "
          f"{cosine_reject:.4f}; dlib distance < 0.6: FA {dlib_accept:.4f} FR {dlib_reject:.4f}")
    assert dlib_accept > 20 * cosine_accept and dlib_accept > 0.02
    assert cosine_reject <= 0.1 and dlib_reject <= cosine_reject
