#!/usr/bin/env python3
"""Measure the vision stages on this machine: latency, detection recall, identity evidence.

Usage: .venv/bin/python tools/vision_report.py [--dir engines] [--runs 100]

Per-stage latency is the median and p90 over --runs calls, one face, after 5 warm-up
calls: detector on a 640x480 frame; dlib landmarks; dlib descriptor; expression model.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import dlib
import numpy as np

from edge.demos import samples
from edge.demos.evidence import collect, detection_recall
from edge.settings import Settings
from edge.vision.loader import VisionModels


def timed(call: Callable[[], object], runs: int) -> tuple[float, float]:
    for _ in range(5):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", default="engines", help="models folder")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=None,
                        help="detector score threshold (default: the settings' default)")
    args = parser.parse_args()
    detection = {} if args.threshold is None else {"score_threshold": args.threshold}
    settings = Settings.model_validate({"models": {"dir": Path(args.dir)},
                                        "detection": detection})
    models = VisionModels.load(settings)

    frame = cv2.resize(samples.astronaut(), (640, 480))
    detections = models.detector.detect([frame])[0]
    face = models.aligner.align(frame, detections)[0]
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    x1, y1, x2, y2 = (int(v) for v in detections.boxes[0])
    rect = dlib.rectangle(x1, y1, x2, y2)
    print(f"per-stage latency, ms (median / p90 over {args.runs} runs, 1 face):")
    stages = {
        "detector 640x480": lambda: models.detector.detect([frame]),
        f"landmarks ({settings.models.landmarks} points)": lambda: models.aligner.predictor(
            rgb, rect),
        "alignment (rotate+landmarks+chip+crop)": lambda: models.aligner.align(frame,
                                                                               detections),
        "descriptor (128-D)": lambda: models.encoder.encode([face.chip]),
        "expression": lambda: models.classifier.vectors([face.crop]),
    }
    for name, call in stages.items():
        median, p90 = timed(call, args.runs)
        print(f"  {name:40} {median:8.2f} {p90:8.2f}")

    print(f"\ndetection recall on lfw_subset (score threshold "
          f"{settings.detection.score_threshold}):")
    print("  face px  recall  extra boxes  boxes on 100 non-faces")
    for side in (25, 32, 48, 64, 100):
        result = detection_recall(models, side)
        print(f"  {side:7d}  {result.recall:6.2f}  {result.false_on_faces:11d}  "
              f"{result.false_on_non_faces:22d}")

    evidence = collect(models)
    print("\nidentity: cosine similarity of a photo with altered copies of itself")
    for photo, variants in evidence.per_variant.items():
        print(f"  {photo}: " + ", ".join(f"{k} {v:.3f}" for k, v in variants.items()))
    genuine, impostor = evidence.genuine, evidence.impostor
    print(f"  genuine pairs  n={len(genuine):5d}  min {genuine.min():.4f}  "
          f"p5 {np.percentile(genuine, 5):.4f}  median {np.median(genuine):.4f}")
    print(f"  impostor pairs n={len(impostor):5d}  max {impostor.max():.4f}  "
          f"p99 {np.percentile(impostor, 99):.4f}  median {np.median(impostor):.4f}")
    print("  threshold  false-accept  false-reject")
    for threshold in (0.90, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97):
        far, frr = evidence.rates(threshold)
        print(f"  {threshold:9.2f}  {far:12.4f}  {frr:12.4f}")
    far, frr = evidence.distance_rates(0.6)
    print(f"  dlib's own rule (Euclidean distance < 0.6): false-accept {far:.4f}, "
          f"false-reject {frr:.4f}")
    models.close()


if __name__ == "__main__":
    main()
