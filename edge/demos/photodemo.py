"""The photo demo (`edge demo --photos`): the vision pipeline on photos from scikit-image.

Enrolls the astronaut and the cameraman (from altered copies, so recognition is not a
byte-for-byte match) into a throwaway state store, then analyses the original photos and
a 640x480 group scene in which a stranger from lfw_subset stands beside them. The
stranger is dropped unanalysed, as the appliance does with anybody not enrolled.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.core.emotions import BASIC_EMOTIONS, COMPONENTS
from edge.demos import samples
from edge.demos.clip import enroll_sample_people
from edge.settings import Settings
from edge.store import Store
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels
from edge.vision.pipeline import FramePipeline

DEMO_CONSENT = "DEMO-CONSENT-0001"


def _say(message: str) -> None:
    print(message, flush=True)


def run_vision_demo(settings: Settings) -> int:
    started = time.perf_counter()
    _say("edge demo: frame -> enrolled person's 10-D emotion vector (CPU back end)")
    models = VisionModels.load(settings)
    _say(f"  models loaded from {settings.models.dir} "
         f"(detector on {models.detector.engine.backend}/{models.detector.engine.device})")
    photos = {"astronaut.png": samples.astronaut(), "cameraman.png": samples.cameraman(),
              "group-scene.png": samples.group_scene()}
    with tempfile.TemporaryDirectory(prefix="edge-demo-") as state_dir, \
            Store(Path(state_dir)) as store:
        _say("  enrolling from altered copies (mirrored, darker, brighter, smaller) with "
             f"consent reference {DEMO_CONSENT}:")
        for person, count in enroll_sample_people(store, models, DEMO_CONSENT,
                                                  prefix="demo-").items():
            _say(f"    {person}: {count} templates")
        person_ids, templates = store.templates()
    pipeline = FramePipeline(models, Gallery(person_ids, templates, settings.identity.threshold))
    _say(f"\n  {'photo':16} {'face':>4} {'person':16} {'similarity':>10} {'top emotion':14} "
         f"{'positive':>8} {'negative':>8} {'complex':>8}")
    analysed = dropped = 0
    for name, result in zip(photos, pipeline.process(list(photos.values()))):
        for index, face in enumerate(result.faces, start=1):
            if face.vector is None:
                dropped += 1
                _say(f"  {name:16} {index:>4} {'unknown':16} {face.similarity:>10.3f} "
                     "dropped: not enrolled, nothing computed")
                continue
            analysed += 1
            top = BASIC_EMOTIONS[int(np.argmax(face.vector[:7]))]
            groups = dict(zip(COMPONENTS, face.vector))
            _say(f"  {name:16} {index:>4} {face.person_id:16} {face.similarity:>10.3f} "
                 f"{top + f' ({face.vector[:7].max():.2f})':14} {groups['positive']:>8.3f} "
                 f"{groups['negative']:>8.3f} {groups['complex']:>8.3f}")
    _say(f"\n  {analysed} faces analysed, {dropped} unknown dropped, "
         f"{time.perf_counter() - started:.1f} s. The throwaway store is deleted; nothing "
         "was written elsewhere.")
    _say("  Next: `edge enroll --person ID --consent REF photo.jpg`, then "
         "`edge analyze photo.jpg`.")
    models.close()
    return 0 if analysed >= 3 else 1


if __name__ == "__main__":
    sys.exit(run_vision_demo(Settings()))
