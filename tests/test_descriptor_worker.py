from __future__ import annotations

import time

import numpy as np

from edge.demos import samples
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.loader import VisionModels


def test_worker_gives_the_same_descriptors_as_inline(vision_models: VisionModels) -> None:
    chips = [vision_models.describe(photo)[0][0].chip
             for photo in (samples.astronaut(), samples.cameraman())]
    worker = DescriptorWorker(vision_models.encoder_path)
    try:
        assert worker.submit(7, chips[0]) and worker.submit(8, chips[1])
        results: dict[int, np.ndarray] = {}
        deadline = time.monotonic() + 60  # the worker loads dlib's model first
        while len(results) < 2 and time.monotonic() < deadline:
            results.update(worker.poll())
            time.sleep(0.02)
        assert set(results) == {7, 8} and worker.pending == 0
        inline = vision_models.encoder.encode(chips)
        np.testing.assert_allclose(results[7], inline[0], atol=1e-6)
        np.testing.assert_allclose(results[8], inline[1], atol=1e-6)
    finally:
        worker.close()
    assert not worker.alive
