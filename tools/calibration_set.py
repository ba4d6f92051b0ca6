#!/usr/bin/env python3
"""Write a calibration set for `edge models quantize`: crowd frames and aligned face crops.

Usage: .venv/bin/python tools/calibration_set.py --out calibration [--frames 120]

Frames come from crowd clips (``edge/demos/crowd.py``: the registry's sample faces crossing
a 640x480 frame under changing light) at seeds the attribution benchmark does not use;
crops are the faces the service's own aligner cuts from those frames. Writes
OUT/frames/*.png (for the detector) and OUT/crops/*.png (for the expression model). These
are public sample photos, never camera images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from edge.core.logs import configure_logging
from edge.demos import crowd
from edge.settings import APP_ROOT, Settings
from edge.vision.loader import VisionModels

SEEDS = (101, 102, 103)  # the attribution benchmark uses 1-8


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    configure_logging("calibration", "WARNING")
    models = VisionModels.load(Settings.model_validate({"models": {
        "dir": APP_ROOT / "engines", "backend": "onnxruntime", "device": "cpu"}}))
    cast = crowd.actors(models)
    (args.out / "frames").mkdir(parents=True, exist_ok=True)
    (args.out / "crops").mkdir(parents=True, exist_ok=True)
    per_seed = -(-args.frames // len(SEEDS))
    crops = 0
    for seed in SEEDS:
        appearances = crowd.plan(cast, 6, per_seed / 2, seed)  # every 12th frame of a clip
        for index in range(0, per_seed * 12, 12):
            frame, _truths = crowd.render(appearances, index)
            cv2.imwrite(str(args.out / "frames" / f"{seed}-{index:05d}.png"), frame)
            detections = models.detector.detect([frame])[0]
            for face in models.aligner.align(frame, detections):
                cv2.imwrite(str(args.out / "crops" / f"{crops:05d}.png"), face.crop)
                crops += 1
    models.close()
    print(f"wrote {per_seed * len(SEEDS)} frames and {crops} face crops under {args.out}")


if __name__ == "__main__":
    main()
