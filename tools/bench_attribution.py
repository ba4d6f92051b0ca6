#!/usr/bin/env python3
"""Attribution against ground truth, at 1, 3, 6 and 10 faces in view.

Usage: .venv/bin/python tools/bench_attribution.py [--seconds 20] [--seeds 7,8]
           [--in-view 1,3,6,10] [--worker] [--json attribution.json]

Crowd clips (``edge/demos/crowd.py``): real faces from scikit-image (the astronaut, the
cameraman, lfw_subset faces), six of them enrolled from photos unlike the clip, the rest
strangers; they cross the frame, cover each other, enter and leave, change scale and light.
The service's frame pipeline runs over each clip (CPU back end, descriptors inline, or with
--worker in the service's descriptor worker and the frames at the camera's pace), and
every analysed face is checked against the frame's truth (``edge/demos/attribution.py``).

Goals (issue 14): no stranger analysed and no face filed under the wrong person at any
crowd size; recall of enrolled faces at least 90 % visible: >= 95 % at 6 in view, >= 90 %
at 10.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from edge.core.logs import configure_logging
from edge.demos.attribution import Score, gallery_for, score_clip
from edge.demos.crowd import actors
from edge.settings import APP_ROOT, Settings
from edge.vision.loader import VisionModels


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seeds", default="7,8")
    parser.add_argument("--in-view", default="1,3,6,10")
    parser.add_argument("--threshold", type=float, help="identity.threshold (default: the "
                        "settings' default)")
    parser.add_argument("--confirmations", type=int, help="identity.confirmations (default: "
                        "the settings' default)")
    parser.add_argument("--detect-every", type=int, help="detection.interval (default: "
                        "the settings' default, 4; 1 detects the whole of every frame)")
    parser.add_argument("--worker", action="store_true", help="descriptors in the service's "
                        "worker process, frames paced at 24 fps (default: inline, repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    identity: dict[str, object] = {}
    if args.threshold is not None:
        identity.update(threshold=args.threshold, keep_threshold=args.threshold - 0.03)
    if args.confirmations is not None:
        identity.update(confirmations=args.confirmations)
    settings = Settings.model_validate({"models": {
        "dir": APP_ROOT / "engines", "backend": "onnxruntime", "device": "cpu"},
        "identity": identity,
        "detection": {} if args.detect_every is None else {"interval": args.detect_every}})
    models = VisionModels.load(settings)
    cast = actors(models)
    gallery = gallery_for(models, cast, settings.identity.threshold)
    rows: list[tuple[int, Score, float]] = []
    for in_view in (int(n) for n in args.in_view.split(",")):
        total = Score(in_view)
        began = time.perf_counter()
        for seed in (int(s) for s in args.seeds.split(",")):
            total.add(score_clip(models, settings, cast, gallery, in_view, args.seconds, seed,
                                 worker_process=args.worker))
        rows.append((in_view, total, time.perf_counter() - began))
        print(f"[attribution] {in_view} in view done", file=sys.stderr)
    models.close()
    print(f"{'in view':>7} {'frames':>6} {'faces':>6} {'right':>6} {'wrong':>5} {'breach':>6} "
          f"{'stray':>5} {'recall >=90% visible':>21} {'descr.':>6} {'fps':>5}")
    for in_view, score, seconds in rows:
        print(f"{in_view:7d} {score.frames:6d} {score.faces:6d} {score.right:6d} "
              f"{score.wrong:5d} {score.breach:6d} {score.stray:5d} "
              f"{score.visible_right:>9d}/{score.visible_enrolled:<5d} {score.recall:6.1%} "
              f"{score.descriptors:6d} {score.frames / seconds:5.1f}")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(s), "recall": s.recall, "seconds": t}
                                         for _n, s, t in rows], indent=2))


if __name__ == "__main__":
    main()
