#!/usr/bin/env python3
"""The quantized (Q/DQ INT8) and FP16 models against FP32 on ONNX Runtime, CPU back end.

Usage: .venv/bin/python tools/bench_quantized.py --dir DIR [--runs 200]

DIR holds the models with their -int8 (and -fp16) copies (`edge models quantize`,
`edge models convert`). Reports the detector's recall on the project's recall set
(lfw_subset's 100 faces at 32, 48 and 100 px, and boxes on its 100 non-faces), the
detector's time per 640x480 frame (median and p90 of --runs), and the expression model's
agreement with FP32 (same top class; largest probability difference) on face crops from
crowd clips at the attribution benchmark's seeds (not the calibration set's).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edge.core.logs import configure_logging
from edge.demos import crowd
from edge.demos.evidence import detection_recall
from edge.settings import Settings
from edge.vision.loader import VisionModels


def load(folder: Path, detector: str, expression: str) -> VisionModels:
    return VisionModels.load(Settings.model_validate({"models": {
        "dir": folder, "backend": "onnxruntime", "device": "cpu", "detector": detector,
        "expression": expression}}))


def detector_ms(models: VisionModels, frame: np.ndarray, runs: int) -> tuple[float, float]:
    for _ in range(5):
        models.detector.detect([frame])
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        models.detector.detect([frame])
        times.append((time.perf_counter() - began) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    configure_logging("quantized", "WARNING")
    reference = load(args.dir, "retinaface-mnet025", "fer-mini-xception")
    cast = crowd.actors(reference)
    frames = [crowd.render(crowd.plan(cast, 6, 20.0, seed), index)[0]
              for seed in (7, 8) for index in range(0, 480, 8)]
    crops = [face.crop for frame in frames
             for face in reference.aligner.align(frame, reference.detector.detect([frame])[0])]
    fp32_probabilities = reference.classifier.probabilities(crops)
    print(f"{'detector':>28} {'recall 32/48/100 px':>20} {'non-face boxes':>14} "
          f"{'ms/frame p50/p90':>17}")
    for name in ("retinaface-mnet025", "retinaface-mnet025-int8"):
        models = load(args.dir, name, "fer-mini-xception")
        recalls = [detection_recall(models, side) for side in (32, 48, 100)]
        median, p90 = detector_ms(models, frames[0], args.runs)
        print(f"{name:>28} {'/'.join(f'{r.recall:.2f}' for r in recalls):>20} "
              f"{sum(r.false_on_non_faces for r in recalls):>14} {median:8.2f}/{p90:<8.2f}")
        models.close()
    print(f"\n{'expression':>28} {'same top class':>15} {'max |dp|':>9}   ({len(crops)} crops)")
    for name in ("fer-mini-xception-int8", "fer-mini-xception-fp16"):
        models = load(args.dir, "retinaface-mnet025", name)
        probabilities = models.classifier.probabilities(crops)
        same = (probabilities.argmax(1) == fp32_probabilities.argmax(1)).mean()
        worst = np.abs(probabilities - fp32_probabilities).max()
        print(f"{name:>28} {same:15.1%} {worst:9.3f}")
        models.close()
    reference.close()


if __name__ == "__main__":
    main()
