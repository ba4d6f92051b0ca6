"""The one place where a source URI becomes a GStreamer pipeline.

``csi://0``, ``v4l2:///dev/video0``, ``rtsp://...``, ``file:///clip.avi`` and ``test://``
each get a pipeline ending in BGR frames at the configured size in an ``appsink`` named
``sink``. On a Jetson (``/etc/nv_tegra_release``) RTSP decodes in hardware. A full pipeline
in ``camera.pipeline`` overrides all of this for unusual cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from edge.core.errors import ConfigError

JETSON_RELEASE = Path("/etc/nv_tegra_release")
SCHEMES = ("csi", "v4l2", "rtsp", "file", "test")


@dataclass(frozen=True)
class SourceSpec:
    scheme: str
    target: str  # sensor id, device path, URL or file path
    live: bool


def parse_source(uri: str) -> SourceSpec:
    parsed = urlparse(uri)
    scheme = parsed.scheme
    if scheme == "csi":
        sensor = parsed.netloc or parsed.path.strip("/") or "0"
        if not sensor.isdigit():
            raise ConfigError(f"camera.source = {uri!r}: csi:// needs a sensor number, e.g. "
                              "csi://0")
        return SourceSpec("csi", sensor, True)
    if scheme == "v4l2":
        device = parsed.path or "/dev/video0"
        return SourceSpec("v4l2", device, True)
    if scheme in ("rtsp", "rtsps"):
        return SourceSpec("rtsp", uri, True)
    if scheme == "file":
        path = unquote(parsed.netloc + parsed.path)
        if not Path(path).is_file():
            raise ConfigError(f"camera.source = {uri!r}: no such file {path!r}",
                              "use file:///absolute/path/to/clip")
        return SourceSpec("file", path, False)
    if scheme == "test":
        return SourceSpec("test", parsed.netloc or "smpte", True)
    raise ConfigError(f"camera.source = {uri!r}: unknown kind of source",
                      "use csi://0, v4l2:///dev/video0, rtsp://..., file:///clip or test://")


def on_jetson() -> bool:
    return JETSON_RELEASE.exists()


def pipeline_for(uri: str, width: int, height: int, fps: int, *,
                 jetson: bool | None = None) -> str:
    """GStreamer pipeline text for ``uri``, ending in ``appsink name=sink`` with BGR frames."""
    spec = parse_source(uri)
    jetson = on_jetson() if jetson is None else jetson
    bgr = f"video/x-raw,format=BGR,width={width},height={height}"
    # live sources: keep only the newest frame; files: every frame, as fast as we take them
    live_sink = "appsink name=sink drop=true max-buffers=1 sync=false"
    file_sink = "appsink name=sink drop=false max-buffers=4 sync=false"
    if spec.scheme == "csi":
        return (f"nvarguscamerasrc sensor-id={spec.target} ! video/x-raw(memory:NVMM),"
                f"width={width},height={height},framerate={fps}/1 ! nvvidconv ! "
                f"video/x-raw,format=BGRx ! videoconvert ! {bgr} ! {live_sink}")
    if spec.scheme == "v4l2":
        return (f"v4l2src device={spec.target} ! videoconvert ! videoscale ! videorate ! "
                f"{bgr},framerate={fps}/1 ! {live_sink}")
    if spec.scheme == "rtsp":
        decode = ("rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,"
                  "format=BGRx ! videoconvert" if jetson else "decodebin ! videoconvert")
        return (f"rtspsrc location={spec.target} latency=100 protocols=tcp ! {decode} ! "
                f"videoscale ! {bgr} ! {live_sink}")
    if spec.scheme == "file":
        return (f'filesrc location="{spec.target}" ! decodebin ! videoconvert ! videoscale ! '
                f"{bgr} ! {file_sink}")
    return (f"videotestsrc is-live=true pattern={spec.target} ! video/x-raw,width={width},"
            f"height={height},framerate={fps}/1 ! videoconvert ! {bgr} ! {live_sink}")
