from __future__ import annotations

import numpy as np
import pytest

from edge.core.records import Detections, Match
from edge.vision.motion import BoxKalman
from edge.vision.track import FaceTracker, Track


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


def test_identity_confirmed_by_two_descriptors_then_rechecked() -> None:
    tracker = FaceTracker(recheck_s=3.0, confirm_s=0.05, ambiguity_margin=0.02,
                          ambiguous_recheck_s=0.5, confirmations=2)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    assert tracker.needs_identity(track, 0.0)
    tracker.set_identity(track, Match("ann", 0.97, 0.80), 0.0)
    assert track.state == "tentative" and tracker.identity_of(track)[0] is None  # not yet
    assert not tracker.needs_identity(track, 0.04) and tracker.needs_identity(track, 0.05)
    tracker.set_identity(track, Match("ann", 0.97, 0.80), 0.05)
    assert track.state == "known" and tracker.identity_of(track)[0] == "ann"
    assert not tracker.needs_identity(track, 3.0) and tracker.needs_identity(track, 3.05)
    tracker.set_identity(track, Match("ann", 0.96, 0.95), 3.05)  # bob is close behind
    assert track.ambiguous and tracker.needs_identity(track, 3.55)


def test_a_second_descriptor_that_disagrees_is_not_a_confirmation() -> None:
    tracker = FaceTracker(confirm_s=0.0, confirmations=2)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    tracker.set_identity(track, Match("ann", 0.96, 0.80), 0.0)
    tracker.set_identity(track, Match("bob", 0.96, 0.80), 0.1)  # one lucky frame each
    assert (track.state, track.person_id, track.confirmations) == ("tentative", "bob", 1)
    tracker.set_identity(track, Match(None, 0.90, 0.80), 0.2)
    assert track.state == "unknown" and tracker.identity_of(track)[0] is None


def test_unknown_tracks_are_not_described_every_frame() -> None:
    tracker = FaceTracker(unknown_recheck_s=0.5)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    tracker.set_identity(track, Match(None, 0.7, 0.6), 10.0)
    assert track.state == "unknown" and track.person_id is None
    assert not tracker.needs_identity(track, 10.4) and tracker.needs_identity(track, 10.5)


def known(tracker: FaceTracker, track: Track, person: str = "ann", at: float = 0.0) -> None:
    for step in range(tracker.confirmations):
        tracker.set_identity(track, Match(person, 0.97, 0.8, person), at + step)


def test_a_face_crossing_in_front_of_another_keeps_its_track() -> None:
    """A walks right past B, who stands still and is hidden while A covers them. Greedy IoU
    on the last boxes hands A's face to B's track at the crossing and keeps it there (it did,
    before this tracker); matched where its motion puts it, A stays A, and B, seen again,
    gets its own track back."""
    tracker = FaceTracker()
    walker: list[int] = []
    stander: list[int] = []
    for frame in range(25):
        x = 20 * frame
        boxes = [(x, 100, x + 60, 160)]
        if abs(x - 200) >= 50:  # B shows unless A is in front of them
            boxes.append((200, 100, 260, 160))
        tracks = tracker.update(detections(*boxes))
        walker.append(tracks[0].track_id)
        if len(tracks) == 2:
            stander.append(tracks[1].track_id)
    assert set(walker) == {1} and set(stander) == {2}


def test_covered_faces_are_not_analysed_and_confirmed_again_after() -> None:
    tracker = FaceTracker(confirm_s=0.0)
    a, b = tracker.update(detections((0, 0, 100, 100), (300, 0, 400, 100)))
    known(tracker, a, "ann")
    known(tracker, b, "bob")
    a, b = tracker.update(detections((0, 0, 100, 100), (60, 0, 160, 100)))  # b covers a
    assert a.covered and b.covered and a.suspect
    assert tracker.identity_of(a)[0] is None and not tracker.needs_identity(a, 5.0)
    (a,) = tracker.update(detections((0, 0, 100, 100)))  # b has gone on
    assert not a.covered and a.suspect and tracker.identity_of(a)[0] is None
    assert tracker.identity_order([a], 5.0) == [0]  # the most urgent
    tracker.set_identity(a, Match("ann", 0.97, 0.8, "ann"), 5.0)
    assert tracker.identity_of(a)[0] == "ann" and not a.suspect


def test_a_face_lost_for_a_frame_is_confirmed_again() -> None:
    tracker = FaceTracker(confirm_s=0.0)
    (a,) = tracker.update(detections((0, 0, 100, 100)))
    known(tracker, a)
    tracker.update(detections())  # not detected: covered by a tile, a blink of the detector
    (again,) = tracker.update(detections((4, 0, 104, 100)))
    assert again is a and a.suspect and tracker.identity_of(a)[0] is None


def test_a_face_cut_by_the_frame_edge_waits_to_be_described() -> None:
    tracker = FaceTracker()
    (a,) = tracker.update(detections((-20, 100, 60, 180)), frame_size=(640, 480))
    assert a.cut and not tracker.needs_identity(a, 0.0)
    (a,) = tracker.update(detections((10, 100, 90, 180)), frame_size=(640, 480))
    assert not a.cut and tracker.needs_identity(a, 0.1)


def test_descriptors_go_to_the_most_urgent_first() -> None:
    tracker = FaceTracker(recheck_s=3.0, unknown_recheck_s=0.5, confirm_s=0.05,
                          confirmations=2)
    boxes = [(x, 0, x + 50, 50) for x in (0, 100, 200, 300, 400)]
    tracks = tracker.update(detections(*boxes))
    known(tracker, tracks[0], "ann", at=-10.0)                            # routine, due
    tracker.set_identity(tracks[1], Match(None, 0.7, 0.6), 0.0)           # unknown, due
    tracker.set_identity(tracks[2], Match("bob", 0.96, 0.8, "bob"), 0.5)  # to confirm
    tracker.set_identity(tracks[3], Match(None, 0.7, 0.6), 0.9)           # unknown, not due
    assert tracker.identity_order(tracks, 1.0) == [4, 2, 1, 0]  # new, confirm, unknown, routine


def test_a_known_track_keeps_its_person_through_one_poor_frame() -> None:
    tracker = FaceTracker(recheck_s=3.0, keep_threshold=0.92)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    known(tracker, track, "ann", at=-1.0)
    tracker.set_identity(track, Match(None, 0.93, 0.8, "ann"), 3.0)   # a turned head
    assert (track.state, track.person_id) == ("known", "ann")
    tracker.set_identity(track, Match(None, 0.91, 0.8, "ann"), 6.0)   # below the keep level
    assert track.state == "unknown"


def test_hysteresis_never_gives_a_track_to_someone_else() -> None:
    tracker = FaceTracker(keep_threshold=0.9)
    (track,) = tracker.update(detections((0, 0, 50, 50)))
    known(tracker, track, "ann", at=-1.0)
    tracker.set_identity(track, Match(None, 0.94, 0.8, "bob"), 3.0)   # now nearer to bob
    assert track.state == "unknown" and track.person_id is None
    (fresh,) = FaceTracker(keep_threshold=0.9).update(detections((0, 0, 50, 50)))
    FaceTracker(keep_threshold=0.9).set_identity(fresh, Match(None, 0.94, 0.8, "ann"), 0.0)
    assert fresh.state == "unknown"  # hysteresis only keeps; it never admits


def test_a_near_miss_is_looked_at_again_before_a_clear_stranger() -> None:
    tracker = FaceTracker(keep_threshold=0.92, unknown_recheck_s=0.5, near_miss_recheck_s=0.25)
    near, far = tracker.update(detections((0, 0, 50, 50), (200, 0, 250, 50)))
    tracker.set_identity(near, Match(None, 0.94, 0.80, "ann"), 0.0)  # ann, just below
    tracker.set_identity(far, Match(None, 0.70, 0.60, "bob"), 0.0)   # nobody we know
    assert tracker.identity_order([near, far], 0.2) == []
    assert tracker.identity_order([near, far], 0.25) == [0]
    assert tracker.identity_order([near, far], 0.5) == [0, 1]


def test_a_face_that_is_nobodys_look_after_look_is_looked_at_less_often() -> None:
    tracker = FaceTracker(keep_threshold=0.92, unknown_recheck_s=0.5,
                          stranger_recheck_max_s=3.0)
    (face,) = tracker.update(detections((0, 0, 50, 50)))
    at = 0.0
    waits = []
    for _ in range(5):
        tracker.set_identity(face, Match(None, 0.70, 0.60, "bob"), at)
        waits.append(tracker.stranger_recheck_s(face))
        at += waits[-1]
        assert tracker.needs_identity(face, at) and not tracker.needs_identity(face, at - 0.01)
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]  # doubling, up to the most it waits
    default = FaceTracker()
    default.update(detections((0, 0, 50, 50)))
    (other,) = default.tracks
    waits = []
    for _ in range(7):
        default.set_identity(other, Match(None, 0.70, 0.60, "bob"), 0.0)
        waits.append(default.stranger_recheck_s(other))
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 24.0]  # by default, up to 24 s
    # control: a near miss in between starts the doubling again
    tracker.set_identity(face, Match(None, 0.93, 0.60, "ann"), at)
    tracker.set_identity(face, Match(None, 0.70, 0.60, "bob"), at + 0.25)
    assert tracker.stranger_recheck_s(face) == 0.5


ANN = Match("ann", 0.97, 0.80, "ann")


def test_a_descriptor_taken_before_an_overlap_or_a_loss_is_stale() -> None:
    """A worker's descriptor arrives frames after its chip was taken. If the face was
    covered or lost meanwhile, the track may follow someone else: the result is dropped,
    also for a track not yet identified (which has no suspicion to clear)."""
    tracker = FaceTracker()
    a, b = tracker.update(detections((0, 0, 50, 50), (200, 0, 250, 50)))
    taken = {a.track_id: a.generation, b.track_id: b.generation}
    a.pending = b.pending = True
    a, b = tracker.update(detections((10, 0, 60, 50), (40, 0, 90, 50)))  # they overlap
    assert a.covered and b.covered
    tracker.update(detections((10, 0, 60, 50), (150, 0, 200, 50)))  # apart again
    assert not tracker.take_descriptor(a.track_id, taken[a.track_id], ANN, 0.1)
    assert a.state == "new" and not a.pending and tracker.needs_identity(a, 0.1)
    # lost for a frame, then found: stale too
    tracker = FaceTracker()
    (c,) = tracker.update(detections((400, 0, 450, 50)))
    generation = c.generation
    tracker.update(detections())
    (c,) = tracker.update(detections((402, 0, 452, 50)))
    assert not tracker.take_descriptor(c.track_id, generation, ANN, 0.2)
    # control: a face that only moved takes its descriptor up
    tracker = FaceTracker()
    (d,) = tracker.update(detections((400, 0, 450, 50)))
    generation = d.generation
    (d,) = tracker.update(detections((404, 2, 454, 52)))
    assert tracker.take_descriptor(d.track_id, generation, ANN, 0.2)
    assert (d.state, d.person_id) == ("known", "ann")
    # and a face that left meanwhile is ignored
    assert not tracker.take_descriptor(999, 0, ANN, 0.2)


def test_carry_moves_faces_by_their_motion_and_settled_says_when() -> None:
    tracker = FaceTracker(confirmations=1)
    for step in range(4):  # a face moving right by 10 px a frame
        (face,) = tracker.update(detections((100 + 10 * step, 100, 200 + 10 * step, 200)),
                                 frame_size=(640, 480))
    assert not tracker.settled()  # control: a new face needs the detector
    tracker.set_identity(face, ANN, 0.2)
    assert tracker.settled()
    face.landmarks = np.array([[130, 130], [170, 130], [150, 150], [135, 175], [165, 175]],
                              np.float32) + 30
    (carried,) = tracker.carry((640, 480))
    assert carried is face and carried.box[0] == pytest.approx(140, abs=3)
    assert carried.landmarks[0, 0] == pytest.approx(160 + 10, abs=3)  # moved with the box
    # a second face coming over it between detections: both covered, no longer settled
    other = Track(99, np.array([150, 100, 250, 200], np.float32),
                  BoxKalman(np.array([150, 100, 250, 200], np.float32)), state="unknown")
    tracker.tracks.append(other)
    tracker.carry((640, 480))
    assert face.covered and face.suspect and not tracker.settled()


def test_a_look_around_the_tracks_confirms_them_or_asks_for_the_whole_frame() -> None:
    """Between whole-frame detections the detector looks around the analysed faces: a
    face found there is a real observation. A face not found, or a face there that is no
    track's, changes nothing and says the whole frame must be detected."""
    tracker = FaceTracker(confirmations=1)
    for step in range(3):
        ann, bob = tracker.update(detections((100 + 10 * step, 100, 200 + 10 * step, 200),
                                             (400, 100, 500, 200)), frame_size=(640, 480))
    tracker.set_identity(ann, ANN, 0.1)
    tracker.set_identity(bob, Match("bob", 0.99, 0.1), 0.1)
    assert tracker.settled()
    np.testing.assert_allclose(tracker.ahead([ann])[0], (130, 100, 230, 200), atol=3)
    # ann found a little off her prediction; in bob's region a face cut by the region's
    # edge that lies inside bob's box is bob's
    seen = tracker.carry((640, 480), {
        ann.track_id: detections((133, 101, 233, 201)),
        bob.track_id: detections((400, 100, 500, 200), (390, 120, 440, 200))})
    assert seen == [ann, bob] and ann.box[0] == pytest.approx(133) and tracker.settled()
    before = [(t.box.copy(), t.motion.mean.copy()) for t in (ann, bob)]
    # bob's region is empty, or someone new is in ann's: the whole frame, nothing changed
    assert tracker.carry((640, 480), {ann.track_id: detections((143, 101, 243, 201)),
                                      bob.track_id: detections()}) is None
    assert tracker.carry((640, 480), {
        ann.track_id: detections((143, 101, 243, 201), (20, 300, 80, 360)),
        bob.track_id: detections((400, 100, 500, 200))}) is None
    for track, (box, mean) in zip((ann, bob), before):
        np.testing.assert_array_equal(track.box, box)
        np.testing.assert_array_equal(track.motion.mean, mean)
    # control: without looks both are carried by their motion
    assert tracker.carry((640, 480)) == [ann, bob]


def test_a_missing_stranger_does_not_bring_the_detector_back() -> None:
    """A stranger the detector missed in the last frame is never analysed: the scene stays
    settled. A missed person's face brings the detector back (control)."""
    tracker = FaceTracker(confirmations=1)
    ann, stranger = tracker.update(detections((100, 100, 200, 200), (400, 100, 500, 200)))
    tracker.set_identity(ann, ANN, 0.0)
    tracker.set_identity(stranger, Match(None, 0.3, 0.2, "ann"), 0.0)
    assert stranger.state == "unknown" and tracker.settled()
    tracker.update(detections((100, 100, 200, 200)))
    assert stranger.misses == 1 and tracker.settled()
    control = FaceTracker(confirmations=1)
    ann, stranger = control.update(detections((100, 100, 200, 200), (400, 100, 500, 200)))
    control.set_identity(ann, ANN, 0.0)
    control.set_identity(stranger, Match(None, 0.3, 0.2, "ann"), 0.0)
    control.update(detections((400, 100, 500, 200)))
    assert ann.misses == 1 and not stranger.suspect and not control.settled()
