"""From frames to enrolled people's 10-D emotion vectors: one short loop over the stages.

detect (batched over frames) -> align -> descriptor -> gallery match -> expression, the
last only for faces that matched an enrolled person. A face that matches nobody is
dropped on the spot: its crops go out of scope and no vector is ever computed for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.inference import Engine, open_model
from edge.logs import get_logger
from edge.models.manifest import Manifest, entry, load_manifest, model_path
from edge.settings import Settings
from edge.vision.align import FaceAligner
from edge.vision.detect import RetinaFaceDetector
from edge.vision.emotion import ExpressionClassifier
from edge.vision.identity import FaceEncoder, Gallery
from edge.vision.records import AlignedFace, Detections, FaceResult


@dataclass
class VisionModels:
    """The loaded models; built once per process (loading takes about a second)."""

    detector: RetinaFaceDetector
    aligner: FaceAligner
    encoder: FaceEncoder
    classifier: ExpressionClassifier
    engines: tuple[Engine, ...]
    encoder_path: Path

    @classmethod
    def load(cls, settings: Settings, manifest: Manifest | None = None) -> VisionModels:
        cfg = settings.models
        models_dir = cfg.dir
        manifest = manifest or load_manifest(models_dir)
        detector_entry = entry(manifest, cfg.detector, models_dir)
        expression_entry = entry(manifest, cfg.expression, models_dir)
        landmarks_entry = entry(manifest, f"dlib-shape-{cfg.landmarks}", models_dir)
        descriptor_entry = entry(manifest, cfg.descriptor, models_dir)
        options = {"backend": cfg.backend, "device": cfg.device, "threads": cfg.threads,
                   "fallback": cfg.fallback_to_onnxruntime}
        detector_engine = open_model(models_dir, manifest, cfg.detector, **options)
        expression_engine = open_model(models_dir, manifest, cfg.expression, **options)
        if detector_entry.input is None:
            raise ModelError(f"{detector_entry.name}: the manifest gives no input description",
                             "run `edge models prepare --force`")
        det = settings.detection
        detector = RetinaFaceDetector(
            detector_engine, detector_entry.input, input_width=det.input_width,
            input_height=det.input_height, score_threshold=det.score_threshold,
            nms_iou=det.nms_iou, min_face_px=det.min_face_px)
        classifier = ExpressionClassifier(expression_engine, expression_entry)
        aligner = FaceAligner(model_path(models_dir, landmarks_entry),
                              crop_size=max(classifier.input_size),
                              crop_margin=settings.emotion.crop_margin)
        encoder_path = model_path(models_dir, descriptor_entry)
        encoder = FaceEncoder(encoder_path)
        get_logger(__name__).info(
            "models_loaded", backend=detector_engine.backend, compute=detector_engine.device,
            detector=detector_entry.name, expression=expression_entry.name,
            landmarks=landmarks_entry.name, descriptor=descriptor_entry.name)
        return cls(detector, aligner, encoder, classifier, (detector_engine, expression_engine),
                   encoder_path)

    def describe(self, frame: np.ndarray) -> list[tuple[AlignedFace, np.ndarray]]:
        """Aligned faces and their descriptors in one frame (for enrollment and evidence)."""
        detections = self.detector.detect([frame])[0]
        faces = self.aligner.align(frame, detections)
        return list(zip(faces, self.encoder.encode([f.chip for f in faces])))

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


class FaceAnalyzer:
    def __init__(self, models: VisionModels, gallery: Gallery) -> None:
        self.models = models
        self.gallery = gallery

    def analyze(self, frames: Sequence[np.ndarray]) -> list[list[FaceResult]]:
        """Per frame, one FaceResult per detected face (unknown faces carry no vector)."""
        all_detections = self.models.detector.detect(frames)
        aligned: list[tuple[int, Detections, AlignedFace]] = []
        for frame_index, (frame, detections) in enumerate(zip(frames, all_detections)):
            aligned += [(frame_index, detections, face)
                        for face in self.models.aligner.align(frame, detections)]
        descriptors = self.models.encoder.encode([face.chip for _, _, face in aligned])
        matches = self.gallery.match(descriptors)
        known = [i for i, m in enumerate(matches) if m.person_id is not None]
        vectors = self.models.classifier.vectors([aligned[i][2].crop for i in known])
        vector_of = dict(zip(known, vectors))
        results: list[list[FaceResult]] = [[] for _ in frames]
        for i, ((frame_index, detections, face), match) in enumerate(zip(aligned, matches)):
            box = detections.boxes[face.detection_index]
            results[frame_index].append(FaceResult(
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                score=float(detections.scores[face.detection_index]),
                person_id=match.person_id, similarity=match.similarity,
                vector=vector_of.get(i)))
        return results


