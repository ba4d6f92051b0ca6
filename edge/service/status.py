"""What the running service reports about itself: counters, latencies, ``status.json``.

Counts and rates only, never who was seen: the status file and the systemd status line
say how many people were analysed this hour, not which.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import EdgeError
from edge.vision.pipeline import STAGES as VISION_STAGES
from edge.vision.pipeline import FrameResult

STATUS_FILE = "status.json"
STAGES = (*VISION_STAGES, "analytics", "frame")


@dataclass
class LoopStats:
    """Counters and bounded latency windows of the running loop."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    frames_dropped: int = 0
    faces: int = 0
    faces_analysed: int = 0
    descriptors: int = 0
    unknown_faces: int = 0
    grades: int = 0
    alerts_queued: int = 0
    alerts_dropped: int = 0
    fps: float = 0.0
    latency_ms: dict[str, deque[float]] = field(
        default_factory=lambda: {s: deque(maxlen=2000) for s in STAGES})
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per stage, all frames
    detected: Counter[str] = field(default_factory=Counter)  # frames by where the detector
                                                             # looked: frame, regions, carried
    people_this_hour: set[str] = field(default_factory=set)
    hour_of_people: datetime | None = None

    def count_frame(self, result: FrameResult, hour: datetime, analytics_ms: float,
                    analytics_cpu_ms: float = 0.0) -> None:
        """Take one processed frame into the counters (``hour``: the device's clock hour)."""
        self.frames += 1
        self.faces += len(result.faces)
        analysed = result.analysed
        self.faces_analysed += len(analysed)
        self.unknown_faces += sum(face.person_id is None for face in result.faces)
        self.descriptors += result.descriptors
        self.detected[result.detected] += 1
        if hour != self.hour_of_people:
            self.people_this_hour.clear()
            self.hour_of_people = hour
        self.people_this_hour.update(f.person_id for f in analysed if f.person_id is not None)
        for stage, ms in result.stage_ms.items():
            self.latency_ms[stage].append(ms)
        self.latency_ms["analytics"].append(analytics_ms)
        for stage, ms in (*result.stage_cpu_ms.items(), ("analytics", analytics_cpu_ms)):
            self.cpu_ms[stage] = self.cpu_ms.get(stage, 0.0) + ms
        self.latency_ms["frame"].append(sum(result.stage_ms.values()) + analytics_ms)
        elapsed = time.monotonic() - self.started
        self.fps = self.frames / elapsed if elapsed > 0 else 0.0

    def percentile(self, stage: str, q: float) -> float | None:
        window = self.latency_ms[stage]
        return float(np.percentile(window, q)) if window else None

    def metrics(self, camera_reconnects: int,
                faults: list[str] | None = None) -> dict[str, Any]:
        """The figures the stats topic carries, and the faults now in force."""
        hours = max((time.monotonic() - self.started) / 3600, 1e-9)
        return {"frames_per_s": round(self.fps, 2),
                "faces_per_h": round(self.faces_analysed / hours, 1),
                "inference_ms": self.percentile("frame", 50),
                "camera_reconnects": camera_reconnects, "faults": faults or []}

    def status(self) -> dict[str, Any]:
        """The loop's part of ``status.json``."""
        return {
            "frames": self.frames, "frames_per_s": round(self.fps, 2),
            "frames_dropped": self.frames_dropped,
            "people_seen_this_hour": len(self.people_this_hour),
            "faces_analysed": self.faces_analysed, "unknown_face_frames": self.unknown_faces,
            "descriptors_computed": self.descriptors, "grades": self.grades,
            "frames_by_detection": dict(self.detected),
            "alerts_queued": self.alerts_queued, "alerts_dropped": self.alerts_dropped,
            "latency_ms_p50": {s: _round(self.percentile(s, 50)) for s in STAGES},
            "latency_ms_p99": {s: _round(self.percentile(s, 99)) for s in STAGES},
            "uptime_s": round(time.monotonic() - self.started, 1),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def write_status(state_dir: Path, status: dict[str, Any]) -> None:
    """Replace ``status.json`` atomically (0600: it lives beside the biometric store)."""
    status = {"updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              **status}
    path = state_dir / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(status, handle, indent=1)
    tmp.replace(path)


def read_status(state_dir: Path) -> dict[str, Any]:
    path = state_dir / STATUS_FILE
    if not path.is_file():
        raise EdgeError(f"{path}: no status yet", "is `edge run` running with this state_dir?")
    return json.loads(path.read_text())
