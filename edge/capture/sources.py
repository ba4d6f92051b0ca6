"""Frame sources that survive their cameras.

``GStreamerSource`` pulls BGR frames from an ``appsink``. A bus ERROR, an EOS on a live
source, or no sample for ``stall_s`` seconds tears the pipeline down to NULL and builds it
again with backoff (1 s doubling to 30 s), counted in ``reconnects``; never a crash. A file
ends with ``None`` (or starts again, with ``loop``). ``OpenCVSource`` is the fallback for
files and device indices where GStreamer's Python bindings are missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from edge.capture.pipelines import PipelinePlan
from edge.core.errors import ConfigError, EdgeError
from edge.core.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # HxWx3 BGR uint8
    index: int         # position in the source (files: frame number from the start)


class FrameSource(Protocol):
    reconnects: int
    problem: str | None  # why no frames come now (an outage), if so

    def read(self) -> Frame | None:
        """The next frame; None when a file has ended (or the source was closed)."""
        ...

    def close(self) -> None: ...


def gstreamer_available() -> bool:
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        from gi.repository import Gst  # noqa: F401
    except (ImportError, ValueError):
        return False
    return True


class CameraError(EdgeError):
    """The camera cannot go on: a file that is gone, damaged or cut short."""


def declared_frames(path: str) -> int | None:
    """The frame count a video file's header declares (OpenCV reads only the header)."""
    capture = cv2.VideoCapture(path)
    try:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0
    finally:
        capture.release()
    return int(count) if count and count > 0 else None


class GStreamerSource:
    def __init__(self, pipeline: PipelinePlan, *, live: bool, stall_s: float = 5.0,
                 loop: bool = False, expected_frames: int | None = None,
                 max_backoff_s: float = 30.0) -> None:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        from gi.repository import Gst

        Gst.init(None)
        self._gst = Gst
        self.plan = pipeline
        self.expected_frames = expected_frames  # a file's frame count, as its header says
        self.problem: str | None = None  # why no frames come now (an outage), if so
        self._outage_began = 0.0
        self.live = live
        self.stall_s = stall_s
        self.loop = loop
        self.max_backoff_s = max_backoff_s
        self.reconnects = 0
        self._index = 0
        self._closed = False
        self._pipeline = None
        self._sink = None
        self._build()

    def _build(self) -> None:
        Gst = self._gst
        try:
            # only the plan's fixed template is parsed; the user's values are properties
            self._pipeline: Any = Gst.parse_launch(self.plan.template)  # a Gst.Bin
            for name, values in self.plan.properties.items():
                element = self._pipeline.get_by_name(name)
                for key, value in values.items():
                    Gst.util_set_object_arg(element, key, str(value))
        except Exception as exc:  # GLib.Error: a syntax error or a missing element
            raise ConfigError(f"camera pipeline cannot be built: {exc}",
                              "check camera.source / camera.pipeline and the GStreamer "
                              "plugins installed (gst-inspect-1.0)") from None
        self._sink = self._pipeline.get_by_name("sink")
        if self._sink is None:
            raise ConfigError("camera.pipeline must end in an appsink named 'sink'")
        self._pipeline.set_state(Gst.State.PLAYING)

    def _teardown(self) -> None:
        if self._pipeline is not None:
            self._pipeline.set_state(self._gst.State.NULL)
        self._pipeline = self._sink = None

    def _bus_problem(self, pipeline: Any) -> str | None:
        """'eos' or an error text when the bus has one; None otherwise."""
        Gst = self._gst
        message = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if message is None:
            return None
        if message.type == Gst.MessageType.EOS:
            return "eos"
        error, debug = message.parse_error()
        return f"{error.message} ({debug.splitlines()[0] if debug else 'no detail'})"

    def read(self) -> Frame | None:
        Gst = self._gst
        backoff = 1.0
        while not self._closed:
            pipeline, sink = self._pipeline, self._sink  # close() may run on another thread
            if pipeline is None or sink is None:
                return None
            sample = sink.emit("try-pull-sample", int(self.stall_s * Gst.SECOND))
            if self._closed:
                return None
            if sample is not None:
                frame = self._to_frame(sample)
                self._index += 1
                if self.problem is not None:  # said once when it began, once when it ends
                    log.info("camera_recovered", after_s=round(time.monotonic()
                                                               - self._outage_began, 1),
                             reconnects=self.reconnects)
                    self.problem = None
                return frame
            # the appsink knows it has reached the end before the bus says so: without this,
            # the end of a file looked like a stall and the file was played again
            problem = self._bus_problem(pipeline) or ("eos" if sink.get_property("eos") else
                                                      f"no frame for {self.stall_s:g} s")
            if problem == "eos" and not self.live and not self.loop:
                self._check_whole_file()
                return None  # the file has ended
            if not self.live and problem != "eos":  # a file: retrying will not mend it
                raise CameraError(f"camera file: {problem}",
                                  "check camera.source: the file is gone or damaged")
            if problem == "eos" and self.loop:
                self._teardown()
                self._build()
                continue
            self.reconnects += 1
            if self.problem is None:
                self._outage_began = time.monotonic()
                log.warning("camera_lost", problem=problem, retry_in_s=backoff)
            else:
                log.debug("camera_retry", problem=problem, reconnects=self.reconnects)
            self.problem = problem
            self._teardown()
            time.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
            if self._closed:
                return None
            try:
                self._build()
            except ConfigError:
                raise
            except Exception as exc:
                log.debug("camera_rebuild_failed", error=str(exc))
        return None

    def _check_whole_file(self) -> None:
        """A clip that ends well before the frame count its header declares was cut short
        (a copy interrupted, a full disk): an error, not a normal end of file."""
        expected = self.expected_frames
        if expected and self._index < expected - max(2, expected // 50):
            raise CameraError(f"camera file ended after {self._index} of the {expected} "
                              "frames its header declares: truncated or damaged",
                              "copy the clip again")

    def _to_frame(self, sample: Any) -> Frame:
        Gst = self._gst
        buffer = sample.get_buffer()
        structure = sample.get_caps().get_structure(0)
        height, width = structure.get_value("height"), structure.get_value("width")
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            raise EdgeError("cannot read a camera buffer")
        try:
            stride = len(info.data) // height  # rows are padded to 4 bytes
            rows = np.ndarray((height, stride), np.uint8, info.data)
            image = rows[:, : width * 3].reshape(height, width, 3).copy()
        finally:
            buffer.unmap(info)
        return Frame(image, self._index)

    def close(self) -> None:
        self._closed = True
        self._teardown()


class OpenCVSource:
    """Files and device indices through OpenCV's own reader (no GStreamer needed)."""

    def __init__(self, target: str | int, width: int, height: int, *, loop: bool = False) -> None:
        self.target = target
        self.size = (width, height)
        self.loop = loop
        self.reconnects = 0
        self.problem: str | None = None
        self._index = 0
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise ConfigError(f"camera.source: OpenCV cannot open {target!r}")

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        if not ok:
            return None
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = Frame(image, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._capture.release()

