"""The one place where a source URI becomes a GStreamer pipeline.

``csi://0``, ``v4l2:///dev/video0``, ``rtsp://...``, ``file:///clip.avi`` and ``test://``
each get a pipeline ending in BGR frames at the configured size in an ``appsink`` named
``sink``. On a Jetson (``/etc/nv_tegra_release``) RTSP decodes in hardware. A full pipeline
in ``camera.pipeline`` overrides all of this for unusual cameras (the expert's choice).

Nothing the user typed becomes pipeline text. A URI is parsed strictly (a sensor number, a
device node, a host with an optional port and a path, an existing file, a test pattern's
name), and the pipeline is a fixed template, holding only whole numbers from the settings,
whose elements get the URI's parts as properties once it is built. Pasted into the text
instead, ``rtsp://cam/x ! multifilesink location=/tmp/%d.jpg`` wrote every frame to disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from edge.core.errors import ConfigError

JETSON_RELEASE = Path("/etc/nv_tegra_release")
SCHEMES = ("csi", "v4l2", "rtsp", "file", "test")
DEVICE_NODE = re.compile(r"/dev/(video[0-9]{1,3}|v4l/by-(id|path)/[A-Za-z0-9._:-]{1,200})")
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9a-f:.]{2,45}")
# the characters RFC 3986 allows in a URL's user info, path and query, less "!" and quotes:
# a camera's URL never needs them, and they are what a pipeline injection needs
URL_PART = re.compile(r"[A-Za-z0-9._~%/:@&=+$,;?*()\[\]-]*")
CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")  # user:password@
TEST_PATTERNS = ("smpte", "snow", "black", "white", "red", "green", "blue", "checkers-1",
                 "checkers-2", "checkers-4", "checkers-8", "circular", "blink", "smpte75",
                 "zone-plate", "gamut", "chroma-zone-plate", "solid-color", "ball", "smpte100",
                 "bar", "pinwheel", "spokes", "gradient", "colors")


@dataclass(frozen=True)
class SourceSpec:
    scheme: str
    target: str  # sensor id, device path, URL or file path
    live: bool


@dataclass(frozen=True)
class PipelinePlan:
    """A pipeline's structure (``template``, gst-launch syntax with named elements) and the
    properties to set on those elements once it is built: {element name: {property: value}}.
    Only the template is parsed; property values are never read as pipeline syntax."""

    template: str
    properties: dict[str, dict[str, str | int]] = field(default_factory=dict)

    def describe(self) -> str:
        """For logs and status: the template with each element's properties shown, without
        the credentials of a camera's URL."""
        parts = [f"{name}.{key}={safe_source_name(str(value))!r}"
                 for name, values in self.properties.items() for key, value in values.items()]
        template = CREDENTIALS.sub(r"\1", self.template)  # an expert's own pipeline, too
        return template + (f"  [{', '.join(parts)}]" if parts else "")


def safe_source_name(uri: str) -> str:
    """The source URI without credentials, for logs and the status file."""
    parsed = urlparse(uri)
    if parsed.username or parsed.password:
        host = parsed.netloc.rsplit("@", 1)[-1]  # host and port, as written
        return parsed._replace(netloc=host).geturl()
    return uri


def _refuse(uri: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"camera.source = {uri!r}: {problem}", hint)


def parse_source(uri: str) -> SourceSpec:
    """The source a URI names, checked strictly; a ConfigError says what is wrong."""
    if not uri.isprintable() or any(c.isspace() for c in uri):
        raise _refuse(uri, "white space or control characters",
                      "a source URI has neither: write a space in a file name as %20")
    parsed = urlparse(uri)
    scheme = parsed.scheme
    if scheme == "csi":
        sensor = parsed.netloc or parsed.path.strip("/") or "0"
        if not (sensor.isdigit() and int(sensor) < 16) or parsed.query or parsed.fragment:
            raise _refuse(uri, "csi:// needs a sensor number", "e.g. csi://0")
        return SourceSpec("csi", str(int(sensor)), True)
    if scheme == "v4l2":
        device = parsed.path or "/dev/video0"
        if parsed.netloc or parsed.query or not DEVICE_NODE.fullmatch(device):
            raise _refuse(uri, "v4l2:// needs a video device node",
                          "e.g. v4l2:///dev/video0 or v4l2:///dev/v4l/by-id/<name>")
        return SourceSpec("v4l2", device, True)
    if scheme in ("rtsp", "rtsps"):
        try:
            port_ok = parsed.port is None or parsed.port > 0  # raises when not a number
        except ValueError:
            port_ok = False
        host = parsed.hostname or ""
        if (not HOST.fullmatch(host) or not port_ok or parsed.fragment
                or not all(URL_PART.fullmatch(part) for part in
                           (parsed.netloc, parsed.path, parsed.query))):
            raise _refuse(uri, "not a valid rtsp:// URL",
                          "rtsp://[user:password@]host[:port]/path, nothing after it")
        return SourceSpec("rtsp", uri, True)
    if scheme == "file":
        path = unquote(parsed.netloc + parsed.path)
        if not Path(path).is_file():
            raise _refuse(uri, f"no such file {path!r}", "use file:///absolute/path/to/clip")
        return SourceSpec("file", path, False)
    if scheme == "test":
        pattern = parsed.netloc or "smpte"
        if pattern not in TEST_PATTERNS or parsed.path or parsed.query:
            raise _refuse(uri, "unknown test pattern", "e.g. test:// or test://ball")
        return SourceSpec("test", pattern, True)
    raise _refuse(uri, "unknown kind of source",
                  "use csi://0, v4l2:///dev/video0, rtsp://..., file:///clip or test://")


def on_jetson() -> bool:
    return JETSON_RELEASE.exists()


def pipeline_for(uri: str, width: int, height: int, fps: int, *,
                 jetson: bool | None = None) -> PipelinePlan:
    """The pipeline for ``uri``, ending in ``appsink name=sink`` with BGR frames."""
    spec = parse_source(uri)
    jetson = on_jetson() if jetson is None else jetson
    width, height, fps = int(width), int(height), int(fps)  # the only values in the text
    bgr = f"video/x-raw,format=BGR,width={width},height={height}"
    # live sources: keep only the newest frame; files: every frame, as fast as we take them
    live_sink = "appsink name=sink drop=true max-buffers=1 sync=false"
    file_sink = "appsink name=sink drop=false max-buffers=4 sync=false"
    if spec.scheme == "csi":
        return PipelinePlan(
            f"nvarguscamerasrc name=src ! video/x-raw(memory:NVMM),width={width},"
            f"height={height},framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! "
            f"videoconvert ! {bgr} ! {live_sink}", {"src": {"sensor-id": int(spec.target)}})
    if spec.scheme == "v4l2":
        return PipelinePlan(
            f"v4l2src name=src ! videoconvert ! videoscale ! videorate ! "
            f"{bgr},framerate={fps}/1 ! {live_sink}", {"src": {"device": spec.target}})
    if spec.scheme == "rtsp":
        decode = ("rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,"
                  "format=BGRx ! videoconvert" if jetson else "decodebin ! videoconvert")
        return PipelinePlan(
            f"rtspsrc name=src latency=100 protocols=tcp ! {decode} ! videoscale ! {bgr} ! "
            f"{live_sink}", {"src": {"location": spec.target}})
    if spec.scheme == "file":
        return PipelinePlan(
            f"filesrc name=src ! decodebin ! videoconvert ! videoscale ! {bgr} ! {file_sink}",
            {"src": {"location": spec.target}})
    return PipelinePlan(
        f"videotestsrc name=src is-live=true ! video/x-raw,width={width},height={height},"
        f"framerate={fps}/1 ! videoconvert ! {bgr} ! {live_sink}",
        {"src": {"pattern": spec.target}})
