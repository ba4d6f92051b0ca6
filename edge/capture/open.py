"""Open the configured camera: GStreamer first, OpenCV for files and V4L2 devices without it."""

from __future__ import annotations

from edge.capture.pipelines import PipelinePlan, parse_source, pipeline_for
from edge.capture.sources import (
    FrameSource,
    GStreamerSource,
    OpenCVSource,
    declared_frames,
    gstreamer_available,
)
from edge.core.errors import ConfigError
from edge.settings import CameraSettings


def open_source(camera: CameraSettings) -> tuple[FrameSource, bool, str]:
    """(source, is_live, description of what was opened)."""
    if camera.pipeline:  # the expert override: taken as written
        plan, live = PipelinePlan(camera.pipeline), True
    else:
        spec = parse_source(camera.source)
        live = spec.live
        if not gstreamer_available():
            if spec.scheme == "file":
                return (OpenCVSource(spec.target, camera.width, camera.height, loop=camera.loop),
                        False, f"OpenCV reader: {spec.target}")
            if spec.scheme == "v4l2" and spec.target.startswith("/dev/video"):
                index = int(spec.target.removeprefix("/dev/video") or 0)
                return (OpenCVSource(index, camera.width, camera.height), True,
                        f"OpenCV reader: {spec.target}")
            raise ConfigError(f"camera.source = {camera.source!r} needs GStreamer's Python "
                              "bindings, which are missing",
                              "run `make setup` (installs PyGObject and GStreamer)")
        plan = pipeline_for(camera.source, camera.width, camera.height, camera.fps)
        if spec.scheme == "file":
            source = GStreamerSource(plan, live=False, stall_s=camera.stall_s,
                                     loop=camera.loop, expected_frames=declared_frames(
                                         spec.target))
            return source, False, plan.describe()
    return (GStreamerSource(plan, live=live, stall_s=camera.stall_s, loop=camera.loop), live,
            plan.describe())
