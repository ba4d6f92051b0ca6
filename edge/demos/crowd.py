"""Crowd clips with ground truth: who is where in every frame, and how much of them shows.

For the attribution benchmark (``tools/bench_attribution.py``) and its test. Real faces
from registry packages only: scikit-image's astronaut and cameraman, and faces of its
lfw_subset (25x25, shown larger, so they are blurry and alike: a hard case for identity).
Each actor crosses the frame on its own straight path, at its own scale and lighting, and
leaves; a new one enters, so about ``in_view`` faces are on screen at once. Paths cross, and
an actor drawn later covers one drawn earlier: the visible share of each face box is
computed from the actual drawing order.

Enrolment photos differ from the clip: the astronaut and the cameraman are enrolled from
altered copies of their photos (as in the demo), lfw faces from a smaller rendering,
mirrored; the clip shows them larger, moving and under changing light.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from edge.demos import samples
from edge.demos.evidence import VARIANTS
from edge.vision.loader import VisionModels

SIZE = (640, 480)
FPS = 24


@dataclass(frozen=True)
class CrowdActor:
    name: str
    image: np.ndarray        # square BGR tile with the face in it
    face: tuple[float, float, float, float]  # the face box in the tile, as shares (x0 y0 x1 y1)
    enrolled: bool


@dataclass(frozen=True)
class Appearance:
    actor: CrowdActor
    start_s: float
    seconds: float
    start: tuple[float, float]   # tile centre at start, pixels
    end: tuple[float, float]
    side: tuple[float, float]    # tile side at start and end
    light: float                 # brightness factor, varies by +-25 % over the crossing


@dataclass(frozen=True)
class FaceTruth:
    actor: str
    enrolled: bool
    box: np.ndarray          # x0 y0 x1 y1 in the frame
    visible: float           # share of the face box shown (not covered, inside the frame)


def actors(models: VisionModels, enrolled_lfw: int = 4,
           strangers: int = 12) -> list[CrowdActor]:
    """The astronaut and cameraman, ``enrolled_lfw`` enrolled lfw faces, and strangers; each
    tile's face box is where the detector finds it (the truth's box)."""
    tiles = [("astronaut", samples.astronaut()[20:300, 100:380].copy(), True),
             ("cameraman", samples.cameraman()[30:300, 100:370].copy(), True)]
    for index, face in enumerate(samples.lfw_faces(enrolled_lfw + strangers)):
        enrolled = index < enrolled_lfw
        name = f"lfw-{index:02d}" if enrolled else f"stranger-{index - enrolled_lfw + 1:02d}"
        tiles.append((name, samples.face_tile(face, 64), enrolled))
    return [CrowdActor(name, image, _face_share(models, name, image), enrolled)
            for name, image, enrolled in tiles]


def _face_share(models: VisionModels, name: str,
                image: np.ndarray) -> tuple[float, float, float, float]:
    """The face box in a tile, as shares of its side, found by the detector."""
    side, x, y = 300, 170, 90
    canvas = np.full((SIZE[1], SIZE[0], 3), 96, np.uint8)
    canvas[y:y + side, x:x + side] = cv2.resize(image, (side, side),
                                               interpolation=cv2.INTER_AREA)
    found = models.detector.detect([canvas])[0]
    if len(found) != 1:
        raise RuntimeError(f"{name}: {len(found)} faces found in its tile")
    x0, y0, x1, y1 = (float(v) for v in found.boxes[0])
    return (x0 - x) / side, (y0 - y) / side, (x1 - x) / side, (y1 - y) / side


def enrolment_photos(actor: CrowdActor) -> list[np.ndarray]:
    """Photos to enroll an actor from: never the clip's own rendering."""
    if actor.name == "astronaut":
        photo = samples.astronaut()
    elif actor.name == "cameraman":
        photo = samples.cameraman()
    else:
        side = 40  # smaller than anywhere in the clip, and mirrored
        index = int(actor.name.split("-")[1])
        face = samples.lfw_faces(index + 1)[index]
        photo = samples.face_tile(face, side)
        photo = cv2.resize(photo, (200, 200), interpolation=cv2.INTER_LINEAR)
        return [np.ascontiguousarray(photo[:, ::-1]), VARIANTS["dark x0.5"](photo)]
    return [VARIANTS[v](photo) for v in ("mirror", "dark x0.5", "rotate -15")]


def plan(cast: list[CrowdActor], in_view: int, seconds: float, seed: int) -> list[Appearance]:
    """Crossings that keep about ``in_view`` faces on screen; enrolled and strangers mixed."""
    rng = random.Random(seed)
    width, height = SIZE
    appearances: list[Appearance] = []
    enrolled = [a for a in cast if a.enrolled]
    strangers = [a for a in cast if not a.enrolled]
    rng.shuffle(enrolled)
    rng.shuffle(strangers)
    # alternate, so every crowd size sees enrolled people and strangers side by side
    order = [a for pair in zip(enrolled * 3, strangers) for a in pair]
    slot_free = [0.0] * in_view
    next_actor = 0
    while min(slot_free) < seconds:
        slot = slot_free.index(min(slot_free))
        actor = order[next_actor % len(order)]
        next_actor += 1
        busy = {a.actor.name for a in appearances
                if a.start_s < slot_free[slot] + 1 and a.start_s + a.seconds > slot_free[slot]}
        if actor.name in busy:  # one actor, one place at a time
            continue
        crossing = rng.uniform(5.0, 9.0)
        side = (rng.uniform(90, 150), rng.uniform(90, 150))
        y0, y1 = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * height
        left_to_right = rng.random() < 0.5
        x0, x1 = (-side[0] / 3, width + side[1] / 3) if left_to_right else (
            width + side[0] / 3, -side[1] / 3)
        start_s = slot_free[slot] if slot_free[slot] > 0 else -rng.uniform(0, crossing * 0.8)
        appearances.append(Appearance(actor, start_s, crossing, (x0, y0), (x1, y1), side,
                                      rng.uniform(0.75, 1.15)))
        slot_free[slot] = start_s + crossing + rng.uniform(0.2, 1.0)
    return appearances


def render(appearances: list[Appearance], frame_index: int,
           fps: int = FPS) -> tuple[np.ndarray, list[FaceTruth]]:
    """The frame and the truth about every face in it, drawn in order (later on top)."""
    width, height = SIZE
    now = frame_index / fps
    canvas = np.full((height, width, 3), 96, np.uint8)
    drawn: list[tuple[Appearance, np.ndarray, np.ndarray]] = []  # (appearance, tile box, face)
    for appearance in appearances:
        progress = (now - appearance.start_s) / appearance.seconds
        if not 0.0 <= progress <= 1.0:
            continue
        cx = appearance.start[0] + (appearance.end[0] - appearance.start[0]) * progress
        cy = appearance.start[1] + (appearance.end[1] - appearance.start[1]) * progress
        side = int(appearance.side[0] + (appearance.side[1] - appearance.side[0]) * progress)
        light = appearance.light * (1 + 0.25 * math.sin(2 * math.pi * progress))
        tile = cv2.resize(appearance.actor.image, (side, side), interpolation=cv2.INTER_AREA)
        tile = np.clip(tile.astype(np.float32) * light, 0, 255).astype(np.uint8)
        x, y = int(cx - side / 2), int(cy - side / 2)
        sx0, sy0 = max(0, -x), max(0, -y)
        dx0, dy0 = max(0, x), max(0, y)
        dx1, dy1 = min(width, x + side), min(height, y + side)
        if dx1 <= dx0 or dy1 <= dy0:
            continue
        canvas[dy0:dy1, dx0:dx1] = tile[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
        fx0, fy0, fx1, fy1 = appearance.actor.face
        face = np.array([x + fx0 * side, y + fy0 * side, x + fx1 * side, y + fy1 * side])
        drawn.append((appearance, np.array([x, y, x + side, y + side], float), face))
    truths = []
    for index, (appearance, _tile, face) in enumerate(drawn):
        truths.append(FaceTruth(appearance.actor.name, appearance.actor.enrolled, face,
                                _visible_share(face, [t for _a, t, _f in drawn[index + 1:]])))
    return canvas, truths


def _visible_share(face: np.ndarray, covers: list[np.ndarray], step: int = 4) -> float:
    """Share of the face box inside the frame and under no tile drawn after it (sampled)."""
    width, height = SIZE
    xs = np.arange(face[0] + step / 2, face[2], step)
    ys = np.arange(face[1] + step / 2, face[3], step)
    if len(xs) == 0 or len(ys) == 0:
        return 0.0
    gx, gy = np.meshgrid(xs, ys)
    shown = (gx >= 0) & (gx < width) & (gy >= 0) & (gy < height)
    for cover in covers:
        shown &= ~((gx >= cover[0]) & (gx < cover[2]) & (gy >= cover[1]) & (gy < cover[3]))
    return float(shown.mean())
