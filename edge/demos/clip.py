"""Synthetic 640x480 clips of real faces (scikit-image's photos), for the demo and the bench.

Each actor drifts on its own path, grows and shrinks, and its lighting rises and falls, so
the detector, the tracks and the identity check all work for their living. Written as
MJPG in AVI: OpenCV writes it, and GStreamer's base and good plugins decode it.

The demo's anomaly is visible and documented: from a given second, the astronaut's mouth
is turned upside down and blurred, so her smile fades (the expression model's "happy"
drops from 1.00 to about 0.6, "neutral" rises).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.demos import samples
from edge.demos.evidence import VARIANTS
from edge.store import Store
from edge.vision.loader import VisionModels


@dataclass(frozen=True)
class Actor:
    name: str
    image: np.ndarray          # square BGR head-and-shoulders crop
    changed: np.ndarray | None = None  # the same crop after the anomaly, if any


def astronaut_actor() -> Actor:
    photo = samples.astronaut()
    crop = photo[20:300, 100:380].copy()
    changed = crop.copy()
    # mouth corners at about (199,137) and (245,141) in the photo: (99..145, 117..121) here
    x0, x1, y0, y1 = 90, 152, 104, 136
    changed[y0:y1, x0:x1] = cv2.GaussianBlur(changed[y0:y1, x0:x1], (0, 0), 1)[::-1]
    return Actor("astronaut", crop, changed)


def cameraman_actor() -> Actor:
    return Actor("cameraman", samples.cameraman()[30:300, 100:370].copy())


def stranger_actors(count: int) -> list[Actor]:
    return [Actor(f"stranger-{i + 1}", samples.face_tile(face, 64))
            for i, face in enumerate(samples.lfw_faces(count))]


@dataclass(frozen=True)
class ClipPlan:
    actors: tuple[Actor, ...]
    seconds: float
    fps: int = 24
    size: tuple[int, int] = (640, 480)
    anomaly_from_s: float | None = None  # when the astronaut's smile fades

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)


def _cells(count: int, width: int, height: int) -> list[tuple[float, float, int]]:
    """(centre x, centre y, cell side) for ``count`` actors on a grid."""
    cols = max(1, math.ceil(math.sqrt(count * width / height)))
    rows = math.ceil(count / cols)
    side = min(width // cols, height // rows)
    return [((c + 0.5) * width / cols, (r + 0.5) * height / rows, side)
            for r in range(rows) for c in range(cols)][:count]


def render_frame(plan: ClipPlan, index: int) -> np.ndarray:
    width, height = plan.size
    t = index / plan.fps
    ramp = np.linspace(70, 120, width, dtype=np.float32)
    frame = np.repeat(ramp[None, :, None], height, axis=0).repeat(3, axis=2).astype(np.uint8)
    for k, ((cx, cy, side), actor) in enumerate(zip(_cells(len(plan.actors), width, height),
                                                    plan.actors)):
        phase = 1.7 * k
        scale = 0.78 + 0.12 * math.sin(2 * math.pi * t / 6.0 + phase)
        size = max(24, int(side * scale))
        dx = 0.08 * side * math.sin(2 * math.pi * t / 5.0 + phase)
        dy = 0.06 * side * math.cos(2 * math.pi * t / 7.0 + phase)
        light = 0.85 + 0.2 * math.sin(2 * math.pi * t / 9.0 + phase)
        image = actor.image
        if actor.changed is not None and plan.anomaly_from_s is not None and \
                t >= plan.anomaly_from_s:
            image = actor.changed
        patch = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        patch = np.clip(patch.astype(np.float32) * light, 0, 255).astype(np.uint8)
        x0 = int(np.clip(cx + dx - size / 2, 0, width - size))
        y0 = int(np.clip(cy + dy - size / 2, 0, height - size))
        frame[y0:y0 + size, x0:x0 + size] = patch
    return frame


def write_clip(plan: ClipPlan, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), plan.fps, plan.size)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write an MJPG clip here")
    try:
        for index in range(plan.frames):
            writer.write(render_frame(plan, index))
    finally:
        writer.release()
    return path


def demo_plan(seconds: float = 60.0, anomaly_from_s: float | None = 45.0) -> ClipPlan:
    """The demo: astronaut and cameraman enrolled, one stranger who is never analysed."""
    return ClipPlan((astronaut_actor(), cameraman_actor(), *stranger_actors(1)), seconds,
                    anomaly_from_s=anomaly_from_s)


def bench_plan(faces: int, seconds: float = 20.0) -> ClipPlan:
    """1, 3 or 10 faces: the two enrolled people first, then strangers from lfw_subset."""
    people = [astronaut_actor(), cameraman_actor(), *stranger_actors(max(0, faces - 2))]
    return ClipPlan(tuple(people[:faces]), seconds)


SAMPLE_PEOPLE = {"astronaut": samples.astronaut, "cameraman": samples.cameraman}
ENROLMENT_VARIANTS = ("mirror", "dark x0.5", "bright x1.4", "half size")


def enroll_sample_people(store: Store, models: VisionModels, consent: str,
                         prefix: str = "") -> dict[str, int]:
    """Enroll the astronaut and the cameraman from altered copies of their photos (so the
    clip's faces are recognised, not matched byte for byte). Returns templates per person."""
    from datetime import date

    counts = {}
    for name, photo in SAMPLE_PEOPLE.items():
        image = photo()
        descriptors = [models.describe(VARIANTS[v](image))[0][1]
                       for v in ENROLMENT_VARIANTS]
        counts[prefix + name] = store.enroll(
            prefix + name, consent, date.today(), descriptors)
    return counts
