"""Face tracks across frames: who a face is, decided once per need, held through crossings.

Association. Each track's box is predicted by a constant-velocity Kalman filter
(``edge.vision.motion``); detections are assigned to the predictions by Hungarian matching
on IoU (SciPy), first at ``iou_threshold``, then what is left at ``low_iou_threshold``
(ByteTrack's second chance). Two faces that cross keep their own tracks because each is
looked for where its motion says it will be, not where it was.

Identity. A track is analysed (its expression counted for a person) only while it is
``known``: ``confirmations`` descriptors from different frames agreed on the same enrolled
person (1 by default: on the attribution benchmark a second one cost three points of
recall and prevented no error, which the re-confirmations below do prevent). While a track's face
overlaps another face, or is cut by the frame's edge, it is not described (the descriptor
of a half face is poor) and, if it overlapped, it is not analysed; after the overlap its
identity is confirmed again before it counts. So is a track's that lost its face for a
frame or more, or found it only at the low threshold: the face may be someone else's.
Hysteresis: a known track keeps its person while the same person stays the nearest at
``keep_threshold`` or more.

Budget. ``identity_order`` says which tracks need a descriptor now, most urgent first: a
new or uncovered face, then a face awaiting confirmation, then an unknown face (a near
miss again after ``near_miss_recheck_s``, a clear stranger after ``unknown_recheck_s``,
doubling with each further stranger verdict up to ``stranger_recheck_max_s``), then a
doubtful match (runner-up within ``ambiguity_margin``), then the routine re-check of a
known face (``recheck_s``). The pipeline spends its per-frame budget from the front. A
track of an unknown face keeps only its box and motion: no crop, no descriptor outlives
the frame. Tracks unseen for ``max_misses`` frames end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.core.records import Detections, Match
from edge.settings import IdentitySettings
from edge.vision.boxes import box_area, intersections, iou_matrix
from edge.vision.motion import BoxKalman

TrackState = Literal["new", "tentative", "known", "unknown"]
EDGE_MARGIN_PX = 2.0
ROUTINE_URGENCY = 2  # urgencies from here on are routine re-checks, not a face to identify
OVERLAP_SHARE = 0.05  # of the smaller face: more than this, and both faces count as covered


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    motion: BoxKalman
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((5, 2), np.float32))
    score: float = 0.0
    state: TrackState = "new"
    person_id: str | None = None
    similarity: float = -1.0
    ambiguous: bool = False
    identified_at: float | None = None
    misses: int = 0
    frames: int = field(default=0)
    pending: bool = False   # a descriptor for it is being computed
    covered: bool = False   # overlaps another face in this frame
    cut: bool = False       # touches the frame's edge in this frame
    suspect: bool = False   # overlapped since its identity was last confirmed
    confirmations: int = 0  # descriptors in a row that named ``person_id``
    strangers: int = 0      # descriptors in a row that found a clear stranger
    generation: int = 0     # +1 whenever the face under the track may have changed (covered,
                            # lost, loosely matched): a descriptor of an older one is stale


class FaceTracker:
    def __init__(self, *, iou_threshold: float = 0.3, low_iou_threshold: float = 0.1,
                 max_misses: int = 12, recheck_s: float = 3.0,
                 unknown_recheck_s: float = 0.5, stranger_recheck_max_s: float = 24.0,
                 near_miss_recheck_s: float = 0.25,
                 confirm_s: float = 0.05,
                 ambiguity_margin: float = 0.02, ambiguous_recheck_s: float = 0.5,
                 keep_threshold: float = 1.0, confirmations: int = 1) -> None:
        self.iou_threshold = iou_threshold
        self.low_iou_threshold = low_iou_threshold
        self.keep_threshold = keep_threshold
        self.max_misses = max_misses
        self.recheck_s = recheck_s
        self.unknown_recheck_s = unknown_recheck_s
        self.stranger_recheck_max_s = stranger_recheck_max_s
        self.near_miss_recheck_s = near_miss_recheck_s
        self.confirm_s = confirm_s
        self.ambiguity_margin = ambiguity_margin
        self.ambiguous_recheck_s = ambiguous_recheck_s
        self.confirmations = confirmations
        self.tracks: list[Track] = []
        self._next_id = 1
        self.changes = 0  # tracks begun and ended so far: a face came or went

    @classmethod
    def for_identity(cls, identity: IdentitySettings) -> FaceTracker:
        """The tracker the service runs with: re-checks and hysteresis from the settings."""
        return cls(recheck_s=identity.recheck_seconds,
                   keep_threshold=min(identity.keep_threshold, identity.threshold),
                   confirmations=identity.confirmations)

    # --- association ---------------------------------------------------------------------
    def update(self, detections: Detections,
               frame_size: tuple[int, int] | None = None) -> list[Track]:
        """Match this frame's detections to tracks: one track per detection, in order.
        ``frame_size`` (width, height) lets a face cut by the frame's edge be told apart."""
        predicted = [track.motion.predict() for track in self.tracks]
        pairs: dict[int, Track] = {}
        doubtful: set[int] = set()  # tracks matched only at the low threshold
        free_tracks = list(range(len(self.tracks)))
        free_detections = list(range(len(detections)))
        for threshold in (self.iou_threshold, self.low_iou_threshold):
            if not free_tracks or not free_detections:
                break
            overlap = iou_matrix(np.stack([predicted[t] for t in free_tracks]),
                                 detections.boxes[free_detections])
            # a tie goes to the track seen in the last frame: one that was hidden has only
            # its prediction to go by
            unseen = np.array([min(self.tracks[t].misses, 5) for t in free_tracks])
            rows, cols = linear_sum_assignment(-(overlap - 0.02 * unseen[:, None]))
            taken = [(r, c) for r, c in zip(rows, cols) if overlap[r, c] >= threshold]
            for r, c in taken:
                pairs[free_detections[c]] = self.tracks[free_tracks[r]]
                if threshold < self.iou_threshold:
                    doubtful.add(self.tracks[free_tracks[r]].track_id)
            free_tracks = [t for i, t in enumerate(free_tracks) if i not in {r for r, _ in taken}]
            free_detections = [d for i, d in enumerate(free_detections)
                               if i not in {c for _, c in taken}]
        for d in free_detections:
            box = detections.boxes[d].copy()
            track = Track(self._next_id, box, BoxKalman(box))
            self._next_id += 1
            self.changes += 1
            self.tracks.append(track)
            pairs[d] = track
        for index, track in pairs.items():
            # a face that was lost for a frame or more, or found only loosely where its
            # track was expected, may be someone else: its identity is confirmed again
            if track.misses > 0 or track.track_id in doubtful:
                track.generation += 1
                track.suspect = track.suspect or track.state != "new"
            track.box = detections.boxes[index].copy()
            track.landmarks = detections.landmarks[index].copy()
            track.score = float(detections.scores[index])
            if track.frames:
                track.motion.update(track.box)
            track.misses = 0
            track.frames += 1
        for t in free_tracks:
            self.tracks[t].misses += 1
        kept = [t for t in self.tracks if t.misses <= self.max_misses]
        self.changes += len(self.tracks) - len(kept)
        self.tracks = kept
        ordered = [pairs[d] for d in sorted(pairs)]
        self._mark_covered_and_cut(ordered, frame_size)
        return ordered

    def settled(self) -> bool:
        """Nothing in view needs the detector in the next frame: every track has its
        verdict (known or a stranger), is neither covered, cut by the frame's edge nor in
        doubt, and was seen in the last frame, unless it is a stranger's (never analysed:
        the next scheduled detection finds it again, and a face that was lost is confirmed
        again before it counts). An empty scene is settled too: a face that comes in is
        found at the next scheduled detection."""
        return all(track.state in ("known", "unknown")
                   and (track.misses == 0 or track.state == "unknown")
                   and not (track.covered or track.cut or track.suspect)
                   for track in self.tracks)

    def carry(self, frame_size: tuple[int, int] | None = None,
              found: Mapping[int, Detections] | None = None) -> list[Track] | None:
        """A frame without detection on the whole frame: each track seen in the last frame
        moves to where its motion says, its landmarks with its box. ``found``: what the
        detector found in the region around some of those tracks (by track id); such a
        track takes the face there that overlaps its moved box most, a real observation.
        None, with nothing changed, when a look failed: a face not found in its region,
        or a face there that is no track's (the caller detects the whole frame instead).
        Overlaps and cuts are marked on the final boxes, so a crossing that begins
        between detections stops the analysis as it would with detections, and brings
        the detector back."""
        carried = [track for track in self.tracks if track.misses == 0]
        found = found or {}
        ahead = self.ahead(carried)
        observed: dict[int, int] = {}  # index in carried -> index of its face in found
        for index, track in enumerate(carried):
            faces = found.get(track.track_id)
            if faces is None:
                continue
            overlap = iou_matrix(ahead[index:index + 1], faces.boxes)[0]
            best = int(np.argmax(overlap)) if len(overlap) else -1
            others = np.delete(faces.boxes, best, axis=0) if best >= 0 else faces.boxes
            if best < 0 or overlap[best] < self.iou_threshold or (
                    len(others) and not _inside_any(others, ahead).all()):
                return None
            observed[index] = best
        for index, track in enumerate(carried):
            before = track.box
            track.box = track.motion.predict().astype(np.float32)
            if index in observed:
                faces = found[track.track_id]
                best = observed[index]
                track.box = faces.boxes[best].copy()
                track.landmarks = faces.landmarks[best].copy()
                track.score = float(faces.scores[best])
                track.motion.update(track.box)
                continue
            size = np.maximum(before[2:] - before[:2], 1.0)
            scale = (track.box[2:] - track.box[:2]) / size
            track.landmarks = ((track.landmarks - (before[:2] + before[2:]) / 2) * scale
                               + (track.box[:2] + track.box[2:]) / 2).astype(np.float32)
        self._mark_covered_and_cut(carried, frame_size)
        return carried

    def ahead(self, tracks: list[Track]) -> np.ndarray:
        """(N, 4) where each track's box will be in the next frame, by its motion."""
        return np.array([t.motion.ahead() for t in tracks], np.float32).reshape(-1, 4)

    def _mark_covered_and_cut(self, tracks: list[Track],
                              frame_size: tuple[int, int] | None) -> None:
        boxes = np.stack([t.box for t in tracks]) if tracks else np.zeros((0, 4))
        area = box_area(boxes)
        shares = intersections(boxes, boxes) / np.maximum(
            np.minimum(area[:, None], area[None, :]), 1.0)
        np.fill_diagonal(shares, 0.0)
        for track, share in zip(tracks, shares):
            track.covered = bool((share > OVERLAP_SHARE).any())
            if track.covered:
                track.generation += 1
                track.suspect = track.suspect or track.state != "new"
            track.cut = frame_size is not None and bool(
                track.box[0] <= EDGE_MARGIN_PX or track.box[1] <= EDGE_MARGIN_PX
                or track.box[2] >= frame_size[0] - EDGE_MARGIN_PX
                or track.box[3] >= frame_size[1] - EDGE_MARGIN_PX)

    def by_id(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)

    # --- identity ----------------------------------------------------------------------------
    def urgency(self, track: Track, now_s: float) -> int | None:
        """How urgently the track needs a descriptor now (0 most); None: not now."""
        if track.pending or track.covered or track.cut:
            return None
        if track.state == "new" or track.identified_at is None or track.suspect:
            return 0
        waited = now_s - track.identified_at
        if track.state == "tentative":
            return 1 if waited >= self.confirm_s else None
        if track.state == "unknown":
            if track.similarity >= self.keep_threshold:  # a near miss: look again soon
                return 1 if waited >= self.near_miss_recheck_s else None
            return 2 if waited >= self.stranger_recheck_s(track) else None
        if track.ambiguous:
            return 3 if waited >= self.ambiguous_recheck_s else None
        return 4 if waited >= self.recheck_s else None

    def stranger_recheck_s(self, track: Track) -> float:
        """When a clear stranger is looked at again: ``unknown_recheck_s`` after the first
        verdict, twice as long after each further one in a row, at most
        ``stranger_recheck_max_s``. A face whose first look was poor is soon looked at
        again; a face that is nobody's, look after look, stops taking the descriptor
        worker's time from the faces that need it. (An overlap, a loss or a loose match
        has it looked at again at once, whatever the wait.)"""
        doubling = 2.0 ** max(0, track.strangers - 1)
        return min(self.unknown_recheck_s * doubling, self.stranger_recheck_max_s)

    def needs_identity(self, track: Track, now_s: float) -> bool:
        return self.urgency(track, now_s) is not None

    def identity_order(self, tracks: list[Track], now_s: float,
                       routine_at_most: int | None = None) -> list[int]:
        """Indexes of ``tracks`` that need a descriptor now, most urgent (and longest
        waiting) first; of the routine ones (a stranger, a doubtful match or a known face
        looked at again) only the first ``routine_at_most``, if given."""
        wanted = sorted((urgency, track.identified_at or -1e9, index)
                        for index, track in enumerate(tracks)
                        if (urgency := self.urgency(track, now_s)) is not None)
        urgent = [index for urgency, _at, index in wanted if urgency < ROUTINE_URGENCY]
        routine = [index for urgency, _at, index in wanted if urgency >= ROUTINE_URGENCY]
        return urgent + routine[:routine_at_most]

    def set_identity(self, track: Track, match: Match, now_s: float) -> None:
        """Record a (re-)identification from one descriptor."""
        if (track.state == "known" and not track.suspect and match.person_id is None
                and match.nearest == track.person_id
                and match.similarity >= self.keep_threshold):  # one poor frame
            match = Match(track.person_id, match.similarity, match.runner_up, match.nearest)
        track.identified_at = now_s
        track.pending = False
        track.similarity = match.similarity
        track.ambiguous = (match.person_id is not None
                           and match.similarity - match.runner_up < self.ambiguity_margin)
        clear_stranger = match.person_id is None and match.similarity < self.keep_threshold
        track.strangers = track.strangers + 1 if clear_stranger else 0
        if match.person_id is None:
            track.person_id, track.state, track.confirmations = None, "unknown", 0
        elif match.person_id == track.person_id and track.state in ("tentative", "known"):
            track.confirmations += 1
        else:
            track.person_id, track.confirmations = match.person_id, 1
        if track.person_id is not None:
            track.state = ("known" if track.confirmations >= self.confirmations
                           else "tentative")
        track.suspect = False if track.state in ("known", "unknown") else track.suspect

    def take_descriptor(self, track_id: int, generation: int, match: Match,
                        now_s: float) -> bool:
        """Take up a descriptor computed elsewhere from the track's chip of ``generation``.
        False when it no longer applies: the face has left, or it was covered or lost after
        the chip was taken (the track may now follow someone else; it asks again)."""
        track = self.by_id(track_id)
        if track is None:
            return False
        track.pending = False
        if generation != track.generation:
            return False
        self.set_identity(track, match, now_s)
        return True

    def identity_of(self, track: Track) -> tuple[str | None, float]:
        """(person, similarity) in force for the track's face: a person only while the
        track is known and its face is not covered by another."""
        analysable = track.state == "known" and not track.covered and not track.suspect
        return (track.person_id if analysable else None), track.similarity

    def forget_person(self, person_id: str) -> None:
        for track in self.tracks:
            if track.person_id == person_id:
                track.person_id, track.state, track.confirmations = None, "unknown", 0


def _inside_any(boxes: np.ndarray, around: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Per box: whether more than ``share`` of it lies inside one of ``around`` (a face
    cut by the edge of a region is still its track's face)."""
    area = np.maximum(box_area(boxes), 1.0)
    return np.asarray((intersections(boxes, around) / area[:, None] > share).any(axis=1))
