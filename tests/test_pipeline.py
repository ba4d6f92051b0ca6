"""The one frame pipeline on real models and real photos: still images and video tracks."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from edge.core.logs import configure_logging
from edge.core.records import FaceRecord
from edge.demos import samples
from edge.demos.evidence import VARIANTS
from edge.settings import Settings
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels
from edge.vision.pipeline import FramePipeline, FrameResult
from edge.vision.track import FaceTracker


@pytest.fixture(scope="module")
def gallery(vision_models: VisionModels) -> Gallery:
    enrolled = {"astronaut": samples.astronaut(), "cameraman": samples.cameraman()}
    ids, templates = [], []
    for person, photo in enrolled.items():
        for change in (VARIANTS["mirror"], VARIANTS["dark x0.5"]):
            ids.append(person)
            templates.append(vision_models.describe(change(photo))[0][1])
    return Gallery(ids, np.stack(templates), Settings().identity.threshold)


def no_pixels(results: list[FrameResult]) -> bool:
    return all(face.aligned is None and face.crop is None
               for result in results for face in result.faces)


def test_group_scene(vision_models: VisionModels, gallery: Gallery) -> None:
    (result,) = FramePipeline(vision_models, gallery).process([samples.group_scene()])
    by_person = {f.person_id: f for f in result.faces}
    assert set(by_person) == {"astronaut", "cameraman", None}
    stranger = by_person[None]
    assert stranger.vector is None  # dropped: no expression computed for a stranger
    for person in ("astronaut", "cameraman"):
        vector = by_person[person].vector
        assert vector is not None and vector.shape == (10,)
        assert vector[:7].sum() == pytest.approx(1.0, abs=1e-4)
        assert by_person[person].similarity >= gallery.threshold
    assert by_person["astronaut"].vector[0] > 0.9  # happy
    assert [f.person_id for f in result.analysed] == [f.person_id for f in result.faces
                                                      if f.person_id is not None]
    assert result.descriptors == 3 and set(result.stage_ms) == {"detect", "identify",
                                                                 "expression"}
    assert no_pixels([result])


def test_batch_of_frames_keeps_frame_order(vision_models: VisionModels,
                                           gallery: Gallery) -> None:
    empty = np.full((480, 640, 3), 128, np.uint8)
    results = FramePipeline(vision_models, gallery).process(
        [samples.cameraman(), empty, samples.astronaut()])
    assert [[f.person_id for f in r.faces] for r in results] == [["cameraman"], [],
                                                                 ["astronaut"]]


def test_nobody_enrolled_means_nothing_analysed(vision_models: VisionModels) -> None:
    pipeline = FramePipeline(vision_models, Gallery([], np.zeros((0, 128), np.float32), 0.95))
    (result,) = pipeline.process([samples.astronaut()])
    assert len(result.faces) == 1 and result.faces[0].person_id is None
    assert result.faces[0].vector is None and result.analysed == []


def test_records_are_the_detections(vision_models: VisionModels, gallery: Gallery) -> None:
    frame = samples.group_scene()
    detections = vision_models.detector.detect([frame])[0]
    (result,) = FramePipeline(vision_models, gallery).process([frame])
    expected = FaceRecord.from_detections(detections)
    assert [f.detection_index for f in result.faces] == list(range(len(detections)))
    for face, plain in zip(result.faces, expected):
        np.testing.assert_array_equal(face.box, plain.box)
        np.testing.assert_array_equal(face.landmarks, plain.landmarks)
        assert face.score == plain.score and face.track_id is None


def test_tracks_describe_each_face_once_inline(vision_models: VisionModels,
                                               gallery: Gallery) -> None:
    """With a tracker and no worker: descriptors inline, three per frame at most, once per
    need: each face once (one descriptor confirms a person by default); nothing after."""
    scene = samples.group_scene()
    tracked = FramePipeline(vision_models, gallery, tracker=FaceTracker(recheck_s=60))
    results = [tracked.process([scene], [i / 24])[0] for i in range(5)]
    assert [r.descriptors for r in results] == [3, 0, 0, 0, 0]
    assert [len(r.analysed) for r in results] == [2] * 5
    for result in results:
        assert sorted(f.person_id or "" for f in result.faces) == ["", "astronaut",
                                                                    "cameraman"]
        assert len({f.track_id for f in result.faces}) == 3
    # with two agreeing descriptors required, the faces count from the confirming frame on
    strict = FramePipeline(vision_models, gallery,
                           tracker=FaceTracker(recheck_s=60, confirmations=2))
    confirmed = [strict.process([scene], [i / 24])[0] for i in range(4)]
    assert [r.descriptors for r in confirmed] == [3, 0, 2, 0]
    assert [len(r.analysed) for r in confirmed] == [0, 0, 2, 2]
    assert no_pixels(results)
    # positive control: the same frames without tracks are described in every frame
    plain = FramePipeline(vision_models, gallery).process([scene] * 5)
    assert [r.descriptors for r in plain] == [3] * 5


def test_tracks_take_worker_results_and_survive_its_death(
        vision_models: VisionModels, gallery: Gallery,
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("pipeline-test", json=True)
    scene = samples.group_scene()
    worker = DescriptorWorker(vision_models.models_dir, vision_models.descriptor_model)
    pipeline = FramePipeline(vision_models, gallery, tracker=FaceTracker(recheck_s=60),
                             worker=worker)
    try:
        (first,) = pipeline.process([scene], [0.0])
        # two waiting at the worker at most; results come later
        assert first.descriptors == 2 and first.analysed == []
        deadline, index = time.monotonic() + 60, 1
        while time.monotonic() < deadline:
            (result,) = pipeline.process([scene], [index / 24])
            index += 1
            tracker = pipeline.tracker
            assert tracker is not None
            if len(result.analysed) == 2 and not any(t.pending for t in tracker.tracks):
                break  # both people known, and the stranger's answer in too
            time.sleep(0.05)
        assert {f.person_id for f in result.analysed} == {"astronaut", "cameraman"}
        # every face has had its descriptor: the next frame asks for none
        (result,) = pipeline.process([scene], [index / 24])
        assert result.descriptors == 0 and len(result.analysed) == 2
        # the worker dies: a new face is then described inline, and that is said loudly
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while worker.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(21):  # faces gone for longer than max_misses: every track ends
            pipeline.process([np.full_like(scene, 90)], [100.0])
        capsys.readouterr()
        after = [pipeline.process([scene], [101.0 + step / 10])[0] for step in range(4)]
        # inline now, three a frame at most: each face once, then nothing
        assert [r.descriptors for r in after] == [3, 0, 0, 0]
        assert len(after[-1].analysed) == 2
        assert pipeline.worker is None
        assert '"event": "descriptor_worker_died"' in capsys.readouterr().err
    finally:
        pipeline.close()
    assert not worker.alive


def test_a_worker_needs_a_tracker(vision_models: VisionModels, gallery: Gallery) -> None:
    with pytest.raises(ValueError, match="tracker"):
        FramePipeline(vision_models, gallery, worker=object())  # type: ignore[arg-type]


def test_detection_every_few_frames_once_the_scene_is_settled(
        vision_models: VisionModels, gallery: Gallery) -> None:
    """With detect_every=3 the detector runs on the whole of the first frames (new faces)
    and then of every third; in between the faces are carried, the analysed ones found again
    in the regions around them, and still analysed, with no descriptor."""
    scene = samples.group_scene()
    pipeline = FramePipeline(vision_models, gallery, tracker=FaceTracker(recheck_s=60),
                             detect_every=3)
    results = [pipeline.process([scene], [i / 24])[0] for i in range(7)]
    assert [r.detected for r in results] == ["frame", "regions", "regions", "frame",
                                             "regions", "regions", "frame"]
    assert all(r.stage_cpu_ms["detect"] > 0 for r in results)
    assert all(set(r.stage_cpu_ms) == set(r.stage_ms) for r in results)
    # the region frames' faces are the detector's, where the whole frame has them (to a
    # tenth of the face: the box regression differs a little at another scale)
    for result in results[1:3]:
        for face, whole in zip(result.analysed, results[0].analysed):
            side = float(max(whole.box[2:] - whole.box[:2]))
            np.testing.assert_allclose(face.box, whole.box, atol=0.1 * side)
    assert [len(r.analysed) for r in results] == [2] * 7
    assert [r.descriptors for r in results] == [3, 0, 0, 0, 0, 0, 0]
    assert no_pixels(results)
    # a face that goes between whole-frame detections is not analysed where it was: its
    # region finds no face, so the whole frame is detected at once
    left = scene.copy()
    left[50:370, 0:280] = 90  # the astronaut steps out
    (gone,) = pipeline.process([left], [7 / 24])
    assert gone.detected == "frame" and len(gone.analysed) == 1
    # control: the default detects every frame
    every = FramePipeline(vision_models, gallery, tracker=FaceTracker(recheck_s=60))
    assert all(every.process([scene], [i / 24])[0].stage_ms["detect"] > 0 for i in range(4))


def test_a_calm_scene_has_its_whole_frame_detected_half_as_often(
        vision_models: VisionModels, gallery: Gallery) -> None:
    """Two seconds settled with no face come or gone: the whole frame every second
    interval; a face that leaves brings the interval back."""
    scene = samples.group_scene()
    left = scene.copy()
    left[50:370, 0:280] = 90  # the astronaut steps out
    pipeline = FramePipeline(vision_models, gallery, tracker=FaceTracker(recheck_s=60),
                             detect_every=2)
    frames = [scene] * 72 + [left] * 36
    detected = [pipeline.process([frame], [i / 24])[0].detected
                for i, frame in enumerate(frames)]
    assert detected[10:22].count("frame") == 6   # settled, not yet calm: every second
    assert detected[60:72].count("frame") == 3   # calm: every fourth
    assert detected[72] == "frame"               # her region is empty: the whole frame
    assert detected[96:108].count("frame") == 6  # her track ended: not calm any more


def test_re_checks_due_together_are_spread_over_frames(vision_models: VisionModels,
                                                       gallery: Gallery) -> None:
    """New faces take the whole inline budget at once; routine re-checks that fall due in
    the same frame are taken one a frame."""
    scene = samples.group_scene()
    pipeline = FramePipeline(vision_models, gallery, tracker=FaceTracker(recheck_s=0.2))
    counts = [pipeline.process([scene], [i / 24])[0].descriptors for i in range(16)]
    assert counts[0] == 3            # control: three new faces, three descriptors
    assert max(counts[1:]) == 1      # both known faces due at 0.2 s: one a frame
    assert sum(counts[4:8]) >= 2     # and both are looked at again
