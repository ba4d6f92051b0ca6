"""The one frame pipeline: frames in, one ``FaceRecord`` per face out.

detect (batched over frames) -> track (optional) -> align -> identify -> expression. The
service (video, with tracks and the descriptor worker), ``edge analyze`` and the photo demo
(still images, no tracks), the demo and the benchmark all run frames through this class,
so the privacy gate and the order of the stages exist once.

The privacy gate: only a face that matched an enrolled person gets an expression vector.
A face that matches nobody keeps nothing beyond the frame: its aligned pixels are cleared
from every record before the records are handed out, and no vector is computed for it.

Identity is the expensive step (dlib's descriptor network, about 4 ms of CPU a face here
on ONNX Runtime). Without a tracker every face is described in its frame. With a tracker a
face is described when its track needs it (new, uncovered, awaiting confirmation, unknown
for a while, or due for a re-check: see ``edge.vision.track``), most urgent first, within a
budget: ``inline_budget`` descriptors a frame when computed inline (the default), and
``worker_in_flight`` waiting at most with a descriptor worker, which runs in another
process so the loop never waits for it. A worker's descriptor arrives a few frames after
its chip was taken; if the track's face was covered or lost in between, the descriptor may
be of someone else and is dropped. A dead worker is replaced by inline computation, once,
loudly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from edge.core.logs import get_logger
from edge.core.records import Detections, FaceRecord
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels
from edge.vision.track import FaceTracker, Track

STAGES = ("detect", "identify", "expression")
Detected = Literal["frame", "regions", "carried"]
REGION_SCALE = 1.6     # a region around a face is this many times its side
REGION_INPUT_PX = 96   # and is scaled to this square for the detector (the face to 60 px)
ROUTINE_PER_FRAME = 1  # inline re-checks a frame (new, uncovered, unconfirmed: the budget)
CALM_S = 2.0  # a scene settled this long, with no face come or gone: whole frames half as often


def _stamp() -> np.ndarray:
    """(wall, this thread's CPU) now, in ms: a stage's CPU is what it cost, its wall time
    what it took while sharing the cores."""
    return np.array([time.perf_counter(), time.thread_time()]) * 1000
log = get_logger(__name__)


@dataclass(frozen=True)
class FrameResult:
    """One frame's faces (no pixels in them), and what the frame cost."""

    faces: list[FaceRecord]
    stage_ms: dict[str, float]   # per STAGES; a batch's detection is shared out evenly
    stage_cpu_ms: dict[str, float]  # the same, in this thread's CPU time
    descriptors: int             # descriptors started for this frame (worker or inline)
    detected: Detected = "frame"  # where the detector looked (see FramePipeline)

    @property
    def analysed(self) -> list[FaceRecord]:
        """The faces of enrolled people, each with its 10-D vector."""
        return [face for face in self.faces if face.vector is not None]


class FramePipeline:
    def __init__(self, models: VisionModels, gallery: Gallery, *,
                 tracker: FaceTracker | None = None,
                 worker: DescriptorWorker | None = None, inline_budget: int = 3,
                 worker_in_flight: int = 2, detect_every: int = 1) -> None:
        if worker is not None and tracker is None:
            raise ValueError("a descriptor worker needs a tracker to take its results up")
        self.models = models
        self.gallery = gallery
        self.tracker = tracker
        self.worker = worker
        self.inline_budget = inline_budget
        self.worker_in_flight = worker_in_flight
        self.detect_every = detect_every
        self._since_detection = detect_every  # the first frame is detected
        self._calm_since: float | None = None
        self._changes_seen = 0

    def set_gallery(self, gallery: Gallery, forgotten: Iterable[str] = ()) -> None:
        """Take up enrolments and erasures; a forgotten person's tracks become unknown."""
        self.gallery = gallery
        if self.tracker is not None:
            for person in forgotten:
                self.tracker.forget_person(person)

    def process(self, frames: Sequence[np.ndarray],
                times_s: Sequence[float] | None = None) -> list[FrameResult]:
        """Each frame's result, in order. ``times_s``: video time of each frame (frame index
        / fps, so a replay decides the same way however fast it runs); needed with a tracker."""
        if not frames:
            return []
        if self.tracker is not None and (times_s is None or len(times_s) != len(frames)):
            raise ValueError("a tracking pipeline needs the video time of every frame")
        if self.tracker is not None and self.detect_every > 1 and times_s is not None:
            return [self._detect_or_carry(self.tracker, frame, now_s)
                    for frame, now_s in zip(frames, times_s)]
        started = _stamp()
        all_detections = self.models.detector.detect(frames)
        detect_cost = (_stamp() - started) / len(frames)
        return [self._after_detection(frame, detections, times_s[i] if times_s else 0.0,
                                      detect_cost)
                for i, (frame, detections) in enumerate(zip(frames, all_detections))]

    def _detect_or_carry(self, tracker: FaceTracker, frame: np.ndarray,
                         now_s: float) -> FrameResult:
        """The whole frame every ``detect_every`` frames, and in every frame while the
        scene is not settled (see ``FaceTracker.settled``). In between, the tracks' motion
        carries the faces and the detector looks only at the region around each face
        being analysed: an analysed face is always one the detector found in this frame,
        never a prediction alone. If a look fails (a face not in its region, or someone
        new in one) the whole frame is detected at once. No descriptor is taken between
        whole-frame detections. A scene that stays settled for ``CALM_S`` with no face
        come or gone has its whole frame detected half as often, until anything changes."""
        self._since_detection += 1
        size = (frame.shape[1], frame.shape[0])
        started = _stamp()
        settled = tracker.settled()
        if not settled or tracker.changes != self._changes_seen:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now_s
        self._changes_seen = tracker.changes
        calm = self._calm_since is not None and now_s - self._calm_since >= CALM_S
        if self._since_detection < self.detect_every * (2 if calm else 1) and settled:
            watched = [t for t in tracker.tracks
                       if t.misses == 0 and tracker.identity_of(t)[0] is not None]
            boxes = tracker.ahead(watched)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            half = REGION_SCALE / 2 * (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True)
            found = self.models.detector.detect_regions(
                frame, np.hstack([centres - half, centres + half]), REGION_INPUT_PX)
            tracks = tracker.carry(size, {t.track_id: f for t, f in zip(watched, found)})
            if tracks is not None:
                detections = Detections(
                    np.array([t.box for t in tracks], np.float32).reshape(-1, 4),
                    np.array([t.score for t in tracks], np.float32),
                    np.array([t.landmarks for t in tracks], np.float32).reshape(-1, 5, 2))
                return self._after_detection(frame, detections, now_s, _stamp() - started,
                                             carried=tracks,
                                             detected="regions" if watched else "carried")
        self._since_detection = 0
        (detections,) = self.models.detector.detect([frame])
        return self._after_detection(frame, detections, now_s, _stamp() - started)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    # --- the stages after detection -----------------------------------------------------------
    def _after_detection(self, frame: np.ndarray, detections: Detections, now_s: float,
                         detect_cost: np.ndarray, carried: list[Track] | None = None,
                         detected: Detected = "frame") -> FrameResult:
        """``detect_cost``: (wall, CPU) ms of the detection; ``carried``: the tracks moved
        by their motion in a frame without detection on the whole frame."""
        started = _stamp()
        faces = FaceRecord.from_detections(detections)
        tracks: list[Track] | None = None
        if self.tracker is not None:
            tracks = (carried if carried is not None
                      else self.tracker.update(detections, (frame.shape[1], frame.shape[0])))
            faces = [replace(f, track_id=t.track_id) for f, t in zip(faces, tracks)]
            self._take_descriptors(now_s)
        # between whole-frame detections no descriptor decides who someone is: a face is
        # described where the detector saw the whole scene
        needs = [] if carried is not None else self._needing_identity(tracks, len(faces),
                                                                       now_s)
        aligner = self.models.aligner
        faces = [replace(f, aligned=aligner.align_face(frame, f.box, f.landmarks)) if i in needs
                 else replace(f, crop=aligner.expression_crop(frame, f.box, f.landmarks))
                 if tracks is not None and self.tracker is not None
                 and self.tracker.identity_of(tracks[i])[0] is not None else f
                 for i, f in enumerate(faces)]
        faces, descriptors = self._identify(faces, tracks, needs, now_s)
        identified = _stamp()
        faces = self._classify(faces)
        classified = _stamp()
        faces = [replace(f, aligned=None, crop=None) for f in faces]  # no pixels outlive it
        costs = {"detect": detect_cost, "identify": identified - started,
                 "expression": classified - identified}
        return FrameResult(faces, {stage: float(cost[0]) for stage, cost in costs.items()},
                           {stage: float(cost[1]) for stage, cost in costs.items()},
                           descriptors, detected)

    def _needing_identity(self, tracks: list[Track] | None, count: int,
                          now_s: float) -> list[int]:
        """The faces to describe in this frame: every face of a still image; on video, the
        most urgent tracks within the budget. Inline, at most ``ROUTINE_PER_FRAME`` of
        them a frame are routine (a stranger, a doubtful or a known face looked at again):
        re-checks that fall due together are spread over frames, so no frame waits for
        several (they set the p99), while new, uncovered and unconfirmed faces and near
        misses get the whole budget."""
        if tracks is None or self.tracker is None:
            return list(range(count))  # still images: every face, every time
        if self.worker is not None and self.worker.alive:
            waiting = sum(track.pending for track in self.tracker.tracks)
            return self.tracker.identity_order(tracks, now_s)[
                :max(0, self.worker_in_flight - waiting)]
        return self.tracker.identity_order(tracks, now_s, ROUTINE_PER_FRAME)[
            :self.inline_budget]

    def _identify(self, faces: list[FaceRecord], tracks: list[Track] | None,
                  needs: list[int], now_s: float) -> tuple[list[FaceRecord], int]:
        chips = {i: aligned.chip for i in needs if (aligned := faces[i].aligned) is not None}
        descriptors = 0
        if tracks is not None and self.tracker is not None:
            worker = self._live_worker() if chips else None
            if worker is not None:
                for i, chip in chips.items():  # results arrive a few frames later, with
                    # the generation of the face the chip was taken from
                    tracks[i].pending = worker.submit(
                        (tracks[i].track_id, tracks[i].generation), chip)
                    descriptors += tracks[i].pending
            elif chips:
                matches = self.gallery.match(self.models.encoder.encode(list(chips.values())))
                for i, match in zip(chips, matches):
                    self.tracker.set_identity(tracks[i], match, now_s)
                descriptors = len(chips)
            identities = [self.tracker.identity_of(track) for track in tracks]
            return [replace(f, person_id=person, similarity=similarity)
                    for f, (person, similarity) in zip(faces, identities)], descriptors
        matches = self.gallery.match(self.models.encoder.encode(list(chips.values())))
        for i, match in zip(chips, matches):
            faces[i] = replace(faces[i], person_id=match.person_id,
                               similarity=match.similarity)
        return faces, len(chips)

    def _classify(self, faces: list[FaceRecord]) -> list[FaceRecord]:
        """The privacy gate: an expression vector only for a face of an enrolled person."""
        crops = {i: crop for i, f in enumerate(faces) if f.person_id is not None and (
                 crop := f.crop if f.aligned is None else f.aligned.crop) is not None}
        if not crops:
            return faces
        for i, vector in zip(crops, self.models.classifier.vectors(list(crops.values()))):
            faces[i] = replace(faces[i], vector=vector)
        return faces

    def _live_worker(self) -> DescriptorWorker | None:
        if self.worker is None or self.worker.alive:
            return self.worker
        log.error("descriptor_worker_died", action="computing descriptors inline")
        self.worker.close()
        self.worker = None
        return None

    def _take_descriptors(self, now_s: float) -> None:
        """Match the descriptors the worker has finished, in one matrix product."""
        if self.worker is None or self.tracker is None:
            return
        ready = self.worker.poll()
        if not ready:
            return
        matches = self.gallery.match(np.stack([descriptor for _, descriptor in ready]))
        for ((track_id, generation), _), match in zip(ready, matches):
            self.tracker.take_descriptor(track_id, generation, match, now_s)
