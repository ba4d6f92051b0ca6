"""Capture through the real GStreamer pipeline: videotestsrc, a file, and recovery."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from edge.capture.pipelines import PipelinePlan, parse_source, pipeline_for
from edge.capture.sources import GStreamerSource, OpenCVSource, gstreamer_available
from edge.core.errors import ConfigError
from edge.demos.clip import bench_plan, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(bench_plan(1, seconds=2.0), tmp_path_factory.mktemp("clip") / "c.avi")


def test_gstreamer_bindings_are_installed() -> None:
    assert gstreamer_available(), "PyGObject with Gst 1.0 is part of the set-up"


@pytest.mark.parametrize(("uri", "jetson", "expected", "properties"), [
    ("csi://1", True, "nvarguscamerasrc name=src ! video/x-raw(memory:NVMM),width=640",
     {"sensor-id": 1}),
    ("v4l2:///dev/video2", False, "v4l2src name=src ! videoconvert",
     {"device": "/dev/video2"}),
    ("rtsp://cam.local/stream", True, "rtph264depay ! h264parse ! nvv4l2decoder",
     {"location": "rtsp://cam.local/stream"}),
    ("rtsp://cam.local/stream", False, "rtspsrc name=src latency=100 protocols=tcp ! decodebin",
     {"location": "rtsp://cam.local/stream"}),
    ("test://ball", False, "videotestsrc name=src is-live=true", {"pattern": "ball"}),
])
def test_one_place_builds_each_pipeline(uri: str, jetson: bool, expected: str,
                                        properties: dict[str, object]) -> None:
    plan = pipeline_for(uri, 640, 480, 24, jetson=jetson)
    assert expected in plan.template
    assert plan.template.endswith("sync=false") and "appsink name=sink" in plan.template
    assert "format=BGR,width=640,height=480" in plan.template
    assert plan.properties == {"src": properties}  # the URI's parts: properties, not text
    assert not any(value in plan.template for value in properties.values()
                   if isinstance(value, str))


def test_file_pipeline_and_bad_uris(clip: Path) -> None:
    plan = pipeline_for(f"file://{clip}", 640, 480, 24)
    assert plan.template.startswith("filesrc name=src ! decodebin")
    assert plan.properties == {"src": {"location": str(clip)}} and str(clip) not in plan.template
    assert not parse_source(f"file://{clip}").live
    for uri, message in (("file:///no/such.avi", "no such file"),
                         ("http://example.org/cam", "unknown kind of source"),
                         ("csi://left", "needs a sensor number")):
        with pytest.raises(ConfigError, match=message):
            parse_source(uri)


def test_videotestsrc_through_the_real_pipeline() -> None:
    source = GStreamerSource(pipeline_for("test://", 320, 240, 30), live=True)
    try:
        frames = [source.read() for _ in range(5)]
    finally:
        source.close()
    assert all(f is not None and f.image.shape == (240, 320, 3) for f in frames)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert source.reconnects == 0


def test_a_file_through_the_real_pipeline_ends_cleanly(clip: Path) -> None:
    source = GStreamerSource(pipeline_for(f"file://{clip}", 640, 480, 24), live=False)
    count = 0
    while (frame := source.read()) is not None:
        assert frame.image.shape == (480, 640, 3) and frame.image.std() > 5
        count += 1
    source.close()
    assert count == 48  # 2 s at 24 fps, every frame, then a clean end


def test_opencv_fallback_reads_the_same_file(clip: Path) -> None:
    source = OpenCVSource(str(clip), 640, 480)
    count = sum(1 for _ in iter(source.read, None))
    source.close()
    assert count == 48


def test_a_live_source_that_ends_is_rebuilt() -> None:
    """A camera that stops (EOS after 4 frames) comes back: frames keep flowing."""
    pipeline = ("videotestsrc is-live=true num-buffers=4 ! video/x-raw,width=160,height=120,"
                "framerate=30/1 ! videoconvert ! video/x-raw,format=BGR ! "
                "appsink name=sink drop=true max-buffers=1 sync=false")
    source = GStreamerSource(PipelinePlan(pipeline), live=True, stall_s=0.5,
                             max_backoff_s=0.2)
    try:
        frames = [source.read() for _ in range(10)]
    finally:
        source.close()
    assert all(f is not None for f in frames)
    assert source.reconnects >= 2


def test_a_broken_camera_is_retried_not_fatal(tmp_path: Path) -> None:
    pipeline = (f"filesrc location={tmp_path}/absent.avi ! decodebin ! videoconvert ! "
                "video/x-raw,format=BGR ! appsink name=sink")
    source = GStreamerSource(PipelinePlan(pipeline), live=True, stall_s=0.3,
                             max_backoff_s=0.2)
    result: list = []
    reader = threading.Thread(target=lambda: result.append(source.read()))
    reader.start()
    time.sleep(2.0)
    source.close()  # the service's shutdown: read() returns None
    reader.join(5)
    assert result == [None] and source.reconnects >= 2


def test_a_bad_pipeline_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="camera pipeline cannot be built"):
        GStreamerSource(PipelinePlan("nosuchelement ! appsink name=sink"), live=True)
    with pytest.raises(ConfigError, match="appsink named 'sink'"):
        GStreamerSource(PipelinePlan("videotestsrc ! fakesink"), live=True)


def test_an_mp4_file_through_the_real_pipeline(tmp_path: Path) -> None:
    import cv2

    from edge.demos.clip import render_frame

    plan = bench_plan(1, seconds=1.0)
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), plan.fps, plan.size)
    for index in range(plan.frames):
        writer.write(render_frame(plan, index))
    writer.release()
    source = GStreamerSource(pipeline_for(f"file://{path}", 640, 480, 24), live=False)
    count = sum(1 for _ in iter(source.read, None))
    source.close()
    assert count == 24


def test_the_end_of_a_file_is_never_taken_for_a_stall(clip: Path) -> None:
    """Read slowly, as a busy loop does: the end must still be the end, every time."""
    for _ in range(3):
        source = GStreamerSource(pipeline_for(f"file://{clip}", 640, 480, 24), live=False,
                                 stall_s=0.5)
        count = 0
        while (frame := source.read()) is not None:
            count += 1
            if frame.index % 12 == 0:
                time.sleep(0.05)
        source.close()
        assert (count, source.reconnects) == (48, 0)


@pytest.mark.parametrize("uri", [
    "rtsp://cam/x ! multifilesink location=/tmp/frame%05d.jpg",
    "rtsp://cam/x!multifilesink",
    "rtsp://cam:99999/x",
    "rtsp:///no-host",
    'rtsp://cam/x"',
    "v4l2:///dev/video0 ! multifilesink location=/tmp/f%d.jpg",
    "v4l2:///dev/video0!jpegenc!multifilesink",
    "v4l2:///etc/passwd",
    "test://ball ! fakesink",
    "csi://0 ! fakesink",
    "csi://99",
])
def test_pipeline_syntax_in_a_source_is_refused(uri: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Checked as strictly by `edge config check` as by `edge run`."""
    from edge.cli import main

    with pytest.raises(ConfigError, match=r"camera\.source"):
        parse_source(uri)
    config = tmp_path / "edge.toml"
    config.write_text(f"[camera]\nsource = '{uri}'\n")
    assert main(["config", "check", str(config)]) == 2
    assert "camera.source" in capsys.readouterr().err


def test_a_file_named_like_a_pipeline_is_only_a_file(clip: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Properties are never parsed: a clip whose name holds pipeline syntax plays as that
    file, and the multifilesink its name describes never runs (no image lands on disk)."""
    shots = tmp_path / "shots"
    shots.mkdir()
    monkeypatch.chdir(shots)  # where the injected sink would write its JPEGs
    odd = tmp_path / 'clip.avi" ! jpegenc ! multifilesink location="f%d.jpg'
    odd.write_bytes(clip.read_bytes())
    source = GStreamerSource(pipeline_for(f"file://{quote(str(odd))}", 320, 240, 24),
                             live=False)
    try:
        frames = [source.read() for _ in range(10)]
    finally:
        source.close()
    assert all(f is not None and f.image.shape == (240, 320, 3) for f in frames)
    assert list(shots.iterdir()) == []


def test_an_outage_is_said_once_when_it_begins_and_once_when_it_ends(
        capsys: pytest.CaptureFixture[str]) -> None:
    from edge.core.logs import configure_logging

    configure_logging("outage-test", "DEBUG", json=True)
    pipeline = ("videotestsrc is-live=true num-buffers=3 ! video/x-raw,width=160,height=120,"
                "framerate=30/1 ! videoconvert ! video/x-raw,format=BGR ! "
                "appsink name=sink drop=true max-buffers=1 sync=false")
    source = GStreamerSource(PipelinePlan(pipeline), live=True, stall_s=0.3,
                             max_backoff_s=0.1)
    capsys.readouterr()
    try:
        assert all(source.read() is not None for _ in range(3))
        assert source.problem is None
        assert source.read() is not None  # after an end of stream and a rebuild
    finally:
        source.close()
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    lost = [e for e in events if e["event"] == "camera_lost"]
    back = [e for e in events if e["event"] == "camera_recovered"]
    assert len(lost) == 1 and len(back) == 1 and source.problem is None


def test_a_truncated_clip_is_an_error_not_an_end(tmp_path: Path, clip: Path) -> None:
    from edge.capture.open import open_source
    from edge.capture.sources import CameraError
    from edge.settings import CameraSettings

    def frames(path: Path) -> int:
        source, _live, _text = open_source(CameraSettings(source=f"file://{path}"))
        count = 0
        try:
            while source.read() is not None:
                count += 1
        finally:
            source.close()
        return count

    assert frames(clip) > 0  # positive control: the whole clip ends normally
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(CameraError, match="truncated or damaged"):
        frames(cut)


def test_a_cameras_password_never_reaches_a_log() -> None:
    """The description logged at start shows each element's properties: the RTSP URL's
    credentials are left out (they had been logged whole), the port kept."""
    plan = pipeline_for("rtsp://admin:s3cret@cam.local:554/h264", 640, 480, 24)
    assert plan.properties["src"]["location"] == "rtsp://admin:s3cret@cam.local:554/h264"
    text = plan.describe()
    assert "s3cret" not in text and "admin" not in text and "cam.local:554/h264" in text
    expert = PipelinePlan("rtspsrc location=rtsp://u:pw@cam/x ! appsink name=sink")
    assert ":pw@" not in expert.describe() and "rtsp://cam/x" in expert.describe()
