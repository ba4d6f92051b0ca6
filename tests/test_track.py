from __future__ import annotations

import numpy as np

from edge.core.records import Detections, Match
from edge.vision.track import FaceTracker


def detections(*boxes: tuple[float, float, float, float]) -> Detections:
    array = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(array, np.ones(len(array), np.float32), np.zeros((len(array), 5, 2)))


def test_a_moving_face_keeps_its_track() -> None:
    tracker = FaceTracker()
    (first,) = tracker.update(detections((100, 100, 200, 200)))
    (second,) = tracker.update(detections((110, 105, 210, 205)))
    assert first.track_id == second.track_id and second.frames == 2
    np.testing.assert_allclose(second.box, [110, 105, 210, 205])


def test_new_faces_new_tracks_and_order_by_detection() -> None:
    tracker = FaceTracker()
    tracker.update(detections((100, 100, 200, 200)))
    tracks = tracker.update(detections((400, 100, 500, 200), (105, 100, 205, 200)))
    assert [t.track_id for t in tracks] == [2, 1]  # in detection order


def test_tracks_end_after_max_misses() -> None:
    tracker = FaceTracker(max_misses=2)
    tracker.update(detections((0, 0, 50, 50)))
    for _ in range(2):
        tracker.update(detections())
    assert len(tracker.tracks) == 1
    tracker.update(detections())
    assert tracker.tracks == []


def test_identity_once_per_track_then_rechecked() -> None:
    tracker = FaceTracker(recheck_s=3.0, ambiguity_margin=0.02, ambiguous_recheck_s=0.5)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    assert tracker.needs_identity(track, 0.0)
    tracker.set_identity(track, Match("ann", 0.97, 0.80), 0.0)
    assert track.state == "known" and not tracker.needs_identity(track, 2.9)
    assert tracker.needs_identity(track, 3.0)
    tracker.set_identity(track, Match("ann", 0.96, 0.95), 3.0)  # bob is close behind
    assert track.ambiguous and tracker.needs_identity(track, 3.5)


def test_unknown_tracks_are_not_described_every_frame() -> None:
    tracker = FaceTracker(recheck_s=3.0)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    tracker.set_identity(track, Match(None, 0.7, 0.6), 10.0)
    assert track.state == "unknown" and track.person_id is None
    assert not tracker.needs_identity(track, 11.0) and tracker.needs_identity(track, 13.0)


def test_a_known_track_keeps_its_person_through_one_poor_frame() -> None:
    tracker = FaceTracker(recheck_s=3.0, keep_threshold=0.92)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    tracker.set_identity(track, Match("ann", 0.97, 0.8, "ann"), 0.0)
    tracker.set_identity(track, Match(None, 0.93, 0.8, "ann"), 3.0)   # a turned head
    assert (track.state, track.person_id) == ("known", "ann")
    tracker.set_identity(track, Match(None, 0.91, 0.8, "ann"), 6.0)   # below the keep level
    assert track.state == "unknown"


def test_hysteresis_never_gives_a_track_to_someone_else() -> None:
    tracker = FaceTracker(keep_threshold=0.9)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    tracker.set_identity(track, Match("ann", 0.97, 0.8, "ann"), 0.0)
    tracker.set_identity(track, Match(None, 0.94, 0.8, "bob"), 3.0)   # now nearer to bob
    assert track.state == "unknown" and track.person_id is None
    (fresh,) = FaceTracker(keep_threshold=0.9).update(detections((0, 0, 50, 50)))
    FaceTracker(keep_threshold=0.9).set_identity(fresh, Match(None, 0.94, 0.8, "ann"), 0.0)
    assert fresh.state == "unknown"  # hysteresis only keeps; it never admits
