"""Attribution against ground truth: was each analysed face the person it was filed under?

Runs the service's own frame pipeline (detector, tracks, identity, expression; descriptors
inline, so a run is repeatable, or in the service's descriptor worker with the frames paced
at the clip's rate, as a camera delivers them) over a crowd clip (``edge.demos.crowd``) and
compares every analysed face with the truth of its frame:

- right: an enrolled person's face, analysed as that person;
- wrong: an enrolled person's face, analysed as someone else;
- breach: a stranger's face analysed (as anyone): a privacy breach;
- stray: an analysed face where the truth has no face (a false detection);
- recall: of the enrolled faces at least 90 % visible, the share analysed as the right person.

Detections are paired with true faces by IoU (Hungarian assignment, at least 0.3), the true
boxes clipped to the frame, and only with faces at least 10 % visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.demos import crowd
from edge.settings import Settings
from edge.vision.align import CHIP_SIZE
from edge.vision.boxes import iou_matrix
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels
from edge.vision.pipeline import FramePipeline
from edge.vision.track import FaceTracker

MIN_IOU = 0.3
MIN_SHOWN = 0.1
VISIBLE = 0.9


@dataclass
class Score:
    in_view: int
    frames: int = 0
    faces: int = 0          # true faces in all frames
    right: int = 0
    wrong: int = 0
    breach: int = 0
    stray: int = 0
    visible_enrolled: int = 0
    visible_right: int = 0
    descriptors: int = 0

    def add(self, other: Score) -> None:
        """Count ``other``'s faces in with these (another clip at the same crowd size)."""
        for count in fields(self):
            if count.name != "in_view":
                setattr(self, count.name, getattr(self, count.name) + getattr(other, count.name))

    @property
    def recall(self) -> float:
        return self.visible_right / self.visible_enrolled if self.visible_enrolled else 0.0


def pair_with_truth(boxes: list[np.ndarray], truths: list[crowd.FaceTruth]) -> dict[int, int]:
    """Detected box -> the true face it shows (Hungarian on IoU, at least ``MIN_IOU``).

    True boxes are clipped to the frame, as a detector's are; a face that shows less than
    ``MIN_SHOWN`` of itself cannot be what was detected there (the face covering it can)."""
    candidates = [i for i, t in enumerate(truths) if t.visible >= MIN_SHOWN]
    if not boxes or not candidates:
        return {}
    width, height = crowd.SIZE
    true_boxes = np.stack([truths[i].box for i in candidates]).astype(np.float32)
    true_boxes = np.clip(true_boxes, 0, [width, height, width, height])
    overlap = iou_matrix(np.stack(boxes), true_boxes)
    rows, cols = linear_sum_assignment(-overlap)
    return {int(r): candidates[int(c)] for r, c in zip(rows, cols) if overlap[r, c] >= MIN_IOU}


def gallery_for(models: VisionModels, cast: list[crowd.CrowdActor],
                threshold: float) -> Gallery:
    people, templates = [], []
    for actor in cast:
        if not actor.enrolled:
            continue
        for photo in crowd.enrolment_photos(actor):
            found = models.describe(photo)
            if len(found) == 1:
                people.append(actor.name)
                templates.append(found[0][1])
    return Gallery(people, np.asarray(templates), threshold)


def _warm_up(worker: DescriptorWorker, timeout_s: float = 60.0) -> None:
    """One descriptor through the worker, so the clip starts with its model loaded (a
    service's worker loads while the camera starts)."""
    worker.submit(None, np.zeros((CHIP_SIZE, CHIP_SIZE, 3), np.uint8))
    deadline = time.monotonic() + timeout_s
    while not worker.poll():
        if time.monotonic() > deadline or not worker.alive:
            raise RuntimeError("the descriptor worker did not start")
        time.sleep(0.02)


def score_clip(models: VisionModels, settings: Settings, cast: list[crowd.CrowdActor],
               gallery: Gallery, in_view: int, seconds: float, seed: int, *,
               worker_process: bool = False) -> Score:
    worker = (DescriptorWorker(models.models_dir, models.descriptor_model) if worker_process
              else None)
    pipeline = FramePipeline(models, gallery, worker=worker,
                             tracker=FaceTracker.for_identity(settings.identity),
                             detect_every=settings.detection.interval)
    appearances = crowd.plan(cast, in_view, seconds, seed)
    score = Score(in_view)
    if worker is not None:
        _warm_up(worker)
    began = time.perf_counter()
    for index in range(int(seconds * crowd.FPS)):
        frame, truths = crowd.render(appearances, index)
        if worker is not None:  # no faster than a camera would deliver the frames
            time.sleep(max(0.0, began + index / crowd.FPS - time.perf_counter()))
        (result,) = pipeline.process([frame], [index / crowd.FPS])
        score.frames += 1
        score.faces += len(truths)
        score.descriptors += result.descriptors
        analysed = result.analysed
        paired = pair_with_truth([f.box for f in analysed], truths)
        for face_index, face in enumerate(analysed):
            truth = truths[paired[face_index]] if face_index in paired else None
            if truth is None:
                score.stray += 1
            elif not truth.enrolled:
                score.breach += 1
            elif face.person_id == truth.actor:
                score.right += 1
            else:
                score.wrong += 1
        right_truths = {paired[i] for i, f in enumerate(analysed)
                        if i in paired and f.person_id == truths[paired[i]].actor}
        for truth_index, truth in enumerate(truths):
            if truth.enrolled and truth.visible >= VISIBLE:
                score.visible_enrolled += 1
                score.visible_right += truth_index in right_truths
    pipeline.close()
    return score
