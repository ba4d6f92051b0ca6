"""The vision stages, loaded from the manifest once per process (about a second).

``VisionModels`` holds the detector, aligner, descriptor encoder and expression classifier;
``edge.vision.pipeline.FramePipeline`` runs a frame through them. ``describe`` is the
enrolment path: descriptors of every face in a photo, with no gallery involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.core.errors import ModelError
from edge.core.logs import get_logger
from edge.core.manifest import (
    MANIFEST_NAME,
    ONNX_SUFFIX,
    Manifest,
    ModelEntry,
    entry,
    load_manifest,
    verified_model_path,
)
from edge.core.records import AlignedFace
from edge.inference import Engine, open_model
from edge.settings import Settings
from edge.vision.align import FaceAligner
from edge.vision.detect import RetinaFaceDetector
from edge.vision.emotion import ExpressionClassifier
from edge.vision.identity import FaceEncoder


@dataclass
class VisionModels:
    """The loaded models; built once per process (loading takes about a second)."""

    detector: RetinaFaceDetector
    aligner: FaceAligner
    encoder: FaceEncoder
    classifier: ExpressionClassifier
    engines: tuple[Engine, ...]
    models_dir: Path
    descriptor_model: ModelEntry  # the descriptor worker opens its own engine from it

    @classmethod
    def load(cls, settings: Settings, manifest: Manifest | None = None) -> VisionModels:
        cfg = settings.models
        models_dir = cfg.dir
        manifest = manifest or load_manifest(models_dir)
        detector_entry = entry(manifest, cfg.detector, models_dir)
        expression_entry = entry(manifest, cfg.expression, models_dir)
        landmarks_entry = entry(manifest, f"dlib-shape-{cfg.landmarks}", models_dir)
        descriptor_entry = _converted(manifest, entry(manifest, cfg.descriptor, models_dir),
                                      models_dir)
        options = {"backend": cfg.backend, "device": cfg.device, "threads": cfg.threads,
                   "fallback": cfg.fallback_to_onnxruntime}
        detector_engine = open_model(models_dir, manifest, cfg.detector, **options)
        expression_engine = open_model(models_dir, manifest, cfg.expression, **options)
        descriptor_engine = open_model(models_dir, manifest, descriptor_entry.name, **options)
        if detector_entry.input is None:
            raise ModelError(f"{detector_entry.name}: the manifest gives no input description",
                             "run `edge models prepare --force`")
        det = settings.detection
        detector = RetinaFaceDetector(
            detector_engine, detector_entry.input, input_width=det.input_width,
            input_height=det.input_height, score_threshold=det.score_threshold,
            nms_iou=det.nms_iou, min_face_px=det.min_face_px)
        classifier = ExpressionClassifier(expression_engine, expression_entry)
        aligner = FaceAligner(verified_model_path(models_dir, landmarks_entry),
                              crop_size=max(classifier.input_size),
                              crop_margin=settings.emotion.crop_margin)
        encoder = FaceEncoder(descriptor_engine, descriptor_entry)
        get_logger(__name__).info(
            "models_loaded", backend=detector_engine.backend, compute=detector_engine.device,
            detector=detector_entry.name, expression=expression_entry.name,
            landmarks=landmarks_entry.name, descriptor=descriptor_entry.name)
        return cls(detector, aligner, encoder, classifier,
                   (detector_engine, expression_engine, descriptor_engine), models_dir,
                   descriptor_entry)

    def describe(self, frame: np.ndarray) -> list[tuple[AlignedFace, np.ndarray]]:
        """Aligned faces and their descriptors in one frame (for enrolment and evidence)."""
        detections = self.detector.detect([frame])[0]
        faces = self.aligner.align(frame, detections)
        return list(zip(faces, self.encoder.encode([f.chip for f in faces])))

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


def _converted(manifest: Manifest, named: ModelEntry, models_dir: Path) -> ModelEntry:
    """The descriptor network to run: a setting that still names dlib's own file (as
    before the conversion existed) gets its ONNX conversion, which gives the same
    descriptors (``edge.models.dlib_onnx``)."""
    if named.format != "dlib":
        return named
    converted = manifest.models.get(named.name + ONNX_SUFFIX)
    if converted is None or converted.source.original_sha256 != named.sha256:
        raise ModelError(f"{named.name}: dlib's own file, which the appliance runs as ONNX; "
                         "the converted network is missing from "
                         f"{models_dir / MANIFEST_NAME}", "run `edge models prepare`")
    return converted
