"""Face tracks across frames, so the expensive descriptor runs once per track, not per frame.

Detections are matched to tracks greedily by IoU. A new track is identified at once; a
known one is re-checked every ``recheck_s`` seconds of video time (frame index / fps, so
a replay decides the same way however fast it runs), and sooner when its match was
ambiguous (a runner-up within ``ambiguity_margin``). A track of an unknown face keeps
only its box, so its descriptor is not recomputed on every frame; nothing else about it
(no crop, no descriptor) outlives the frame. Tracks unseen for ``max_misses`` frames end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edge.core.records import Detections, Match
from edge.vision.boxes import iou_matrix

TrackState = Literal["new", "known", "unknown"]


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    state: TrackState = "new"
    person_id: str | None = None
    similarity: float = -1.0
    ambiguous: bool = False
    identified_at: float | None = None
    misses: int = 0
    frames: int = field(default=0)
    pending: bool = False  # a descriptor for it is being computed


class FaceTracker:
    def __init__(self, *, iou_threshold: float = 0.3, max_misses: int = 12,
                 recheck_s: float = 3.0, ambiguity_margin: float = 0.02,
                 ambiguous_recheck_s: float = 0.5, keep_threshold: float = 1.0) -> None:
        self.iou_threshold = iou_threshold
        self.keep_threshold = keep_threshold
        self.max_misses = max_misses
        self.recheck_s = recheck_s
        self.ambiguity_margin = ambiguity_margin
        self.ambiguous_recheck_s = ambiguous_recheck_s
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, detections: Detections) -> list[Track]:
        """Match this frame's detections to tracks: one track per detection, in order."""
        pairs: list[tuple[int, Track]] = []
        free_tracks = set(range(len(self.tracks)))
        free_detections = set(range(len(detections)))
        if self.tracks and len(detections):
            overlap = iou_matrix(np.stack([t.box for t in self.tracks]), detections.boxes)
            for flat in np.argsort(-overlap, axis=None):
                t, d = np.unravel_index(flat, overlap.shape)
                if overlap[t, d] < self.iou_threshold:
                    break
                if t in free_tracks and d in free_detections:
                    free_tracks.discard(t)
                    free_detections.discard(d)
                    pairs.append((int(d), self.tracks[t]))
        for d in sorted(free_detections):
            track = Track(self._next_id, detections.boxes[d].copy())
            self._next_id += 1
            self.tracks.append(track)
            pairs.append((d, track))
        for index, track in pairs:
            track.box = detections.boxes[index].copy()
            track.misses = 0
            track.frames += 1
        for t in free_tracks:
            self.tracks[t].misses += 1
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]
        return [track for _, track in sorted(pairs, key=lambda pair: pair[0])]

    def by_id(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)

    def needs_identity(self, track: Track, now_s: float) -> bool:
        if track.pending:
            return False
        if track.state == "new" or track.identified_at is None:
            return True
        wait = self.ambiguous_recheck_s if track.ambiguous else self.recheck_s
        return now_s - track.identified_at >= wait

    def set_identity(self, track: Track, match: Match, now_s: float) -> None:
        """Record a (re-)identification. Hysteresis: a known track keeps its person while the
        same person stays the nearest at ``keep_threshold`` or more, so one poor frame (a
        turned head, a shadow) does not drop a person the track has already established."""
        if (track.state == "known" and match.person_id is None
                and match.nearest == track.person_id
                and match.similarity >= self.keep_threshold):
            match = Match(track.person_id, match.similarity, match.runner_up, match.nearest)
        track.identified_at = now_s
        track.pending = False
        track.similarity = match.similarity
        track.person_id = match.person_id
        track.state = "known" if match.person_id is not None else "unknown"
        track.ambiguous = (match.person_id is not None
                           and match.similarity - match.runner_up < self.ambiguity_margin)

    def identity_of(self, track: Track) -> tuple[str | None, float]:
        """(person, similarity) in force for the track's face; person None unless known."""
        return (track.person_id if track.state == "known" else None), track.similarity

    def forget_person(self, person_id: str) -> None:
        for track in self.tracks:
            if track.person_id == person_id:
                track.person_id, track.state = None, "unknown"
