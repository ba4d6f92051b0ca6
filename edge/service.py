"""The device service: one process, one loop, every stage wired once.

capture thread -> bounded queue (newest frame wins for cameras; files wait) -> detect ->
tracks -> identity (once per track) -> expression -> hourly aggregation -> store ->
outbox -> publisher thread. Nothing is unbounded: the frame queue holds one frame, the
latency windows are fixed deques, and tracks end when their face leaves.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.aggregate import hour_start
from edge.analytics.engine import RiskAnalytics
from edge.analytics.records import RiskGrade
from edge.capture.pipelines import parse_source, pipeline_for
from edge.capture.sources import Frame, FrameSource, GStreamerSource, OpenCVSource
from edge.clock import Clock, SimulatedClock, SystemClock
from edge.errors import ConfigError, EdgeError
from edge.logs import get_logger
from edge.publish.client import Publisher
from edge.publish.outbox import queue_alerts
from edge.sdnotify import Notifier
from edge.secrets import device_key
from edge.settings import Settings
from edge.store import Store
from edge.track import FaceTracker
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.identity import Gallery
from edge.vision.pipeline import VisionModels

STATUS_FILE = "status.json"
STAGES = ("detect", "identify", "expression", "analytics", "frame")
log = get_logger(__name__)


def check_lawful_use(settings: Settings) -> None:
    """No expression analysis without a declared purpose and legal basis (README)."""
    deployment = settings.deployment
    if deployment.purpose is None or not deployment.legal_basis.strip():
        raise EdgeError(
            "expression analysis is not allowed until [deployment] purpose (medical, safety "
            "or research) and legal_basis are declared in the settings",
            "read the README section 'Lawful use' (EU AI Act Art. 5(1)(f), GDPR Art. 9)")


def safe_source_name(uri: str) -> str:
    """The source URI without credentials, for logs and the status file."""
    parsed = urlparse(uri)
    if parsed.username or parsed.password:
        return parsed._replace(netloc=parsed.hostname or "").geturl()
    return uri


def open_source(settings: Settings) -> tuple[FrameSource, bool, str]:
    """(source, is_live, description). GStreamer first; OpenCV for files without it."""
    from edge.capture.sources import gstreamer_available

    camera = settings.camera
    if camera.pipeline:
        text, live = camera.pipeline, True
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
        text = pipeline_for(camera.source, camera.width, camera.height, camera.fps)
    return GStreamerSource(text, live=live, stall_s=camera.stall_s, loop=camera.loop), live, text


@dataclass
class LoopStats:
    """Counters and bounded latency windows of the running loop."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    frames_dropped: int = 0
    faces: int = 0
    faces_analysed: int = 0
    descriptors: int = 0
    unknown_faces: int = 0
    grades: int = 0
    alerts_queued: int = 0
    fps: float = 0.0
    latency_ms: dict[str, deque[float]] = field(
        default_factory=lambda: {s: deque(maxlen=2000) for s in STAGES})
    people_this_hour: set[str] = field(default_factory=set)

    def percentile(self, stage: str, q: float) -> float | None:
        window = self.latency_ms[stage]
        return float(np.percentile(window, q)) if window else None


class Service:
    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 notifier: Notifier | None = None, max_frames: int | None = None,
                 on_grades: Callable[[list[RiskGrade]], None] | None = None,
                 on_progress: Callable[[Service], None] | None = None) -> None:
        check_lawful_use(settings)
        self.settings = settings
        self.state_dir = settings.storage.state_dir
        camera = settings.camera
        if clock is None and camera.replay_speed is not None:
            clock = SimulatedClock(datetime.now(timezone.utc))
        self.clock = clock or SystemClock()
        self.replay_start = self.clock.now()
        self.notifier = notifier or Notifier()
        self.max_frames = max_frames
        self.on_grades = on_grades
        self.on_progress = on_progress
        self.stats = LoopStats()
        self._stop = threading.Event()
        self.store = Store(self.state_dir)
        self.models = VisionModels.load(settings)
        person_ids, templates = self.store.templates()
        self.gallery = Gallery(person_ids, templates, settings.identity.threshold)
        self._people_signature = self.store.people_signature()
        if not person_ids:
            log.warning("nobody_enrolled", hint="use `edge enroll`; every face is dropped")
        self.worker = (DescriptorWorker(self.models.encoder_path)
                       if settings.identity.worker_process else None)
        self.tracker = FaceTracker(recheck_s=settings.identity.recheck_seconds,
                                   keep_threshold=min(settings.identity.keep_threshold,
                                                      settings.identity.threshold))
        self.key = device_key(self.state_dir)
        self.analytics = RiskAnalytics(self.store, settings.analytics,
                                       ZoneInfo(settings.device.timezone), self.clock)
        self.publisher = Publisher(settings, self.state_dir, clock=self.clock)
        self.source, self.live, description = open_source(settings)
        log.info("camera_pipeline", source=safe_source_name(camera.source),
                 pipeline=safe_source_name(description))
        self._frames: queue.Queue[Frame | None] = queue.Queue(maxsize=1)
        self._hour_of_people: datetime | None = None

    # --- capture thread ------------------------------------------------------------------------
    def _capture(self) -> None:
        every = self.settings.camera.sample_every
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                if frame.index % every:
                    continue
                if self.live:  # newest frame wins: a slow loop never falls behind a camera
                    try:
                        self._frames.get_nowait()
                        self.stats.frames_dropped += 1
                    except queue.Empty:
                        pass
                    self._frames.put(frame)
                else:  # a file: every sampled frame, in order
                    while not self._stop.is_set():
                        try:
                            self._frames.put(frame, timeout=0.2)
                            break
                        except queue.Full:
                            continue
        except Exception as exc:
            log.error("capture_failed", error=repr(exc))
        finally:
            self._frames.put(None)

    # --- the loop ------------------------------------------------------------------------------
    def request_stop(self, *_args: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until the source ends, ``max_frames``, or SIGTERM/SIGINT; returns an exit code."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self.publisher.start()
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        capture.start()
        ready = False
        last_status = last_watchdog = last_metrics = 0.0
        try:
            while not self._stop.is_set():
                try:
                    frame = self._frames.get(timeout=1.0)
                except queue.Empty:
                    continue
                if frame is None:
                    break
                if not ready:
                    ready = True
                    self.notifier.ready(f"camera delivering; {len(self.gallery.people)} "
                                        "people enrolled")
                    log.info("service_ready", enrolled=len(self.gallery.people))
                self.process(frame)
                now = time.monotonic()
                if now - last_watchdog >= 1.0:  # only while frames are really processed
                    self.notifier.watchdog()
                    last_watchdog = now
                if now - last_status >= 2.0:
                    self._refresh_people()
                    self._report_status("running")
                    last_status = now
                if now - last_metrics >= 5.0:
                    self.publisher.update_metrics(**self._metrics())
                    last_metrics = now
                if self.on_progress is not None:
                    self.on_progress(self)
                if self.max_frames is not None and self.stats.frames >= self.max_frames:
                    break
        finally:
            self.shutdown()
            capture.join(timeout=5)
        return 0

    def process(self, frame: Frame) -> list[RiskGrade]:
        """One frame through every stage; returns the grades of hours it closed."""
        started = time.perf_counter()
        if self.settings.camera.replay_speed is not None and isinstance(self.clock,
                                                                        SimulatedClock):
            seconds = frame.index * self.settings.camera.replay_speed / self.settings.camera.fps
            moment = self.replay_start + timedelta(seconds=seconds)
            if moment > self.clock.now():
                self.clock.set(moment)
        models = self.models
        detections = models.detector.detect([frame.image])[0]
        detected = time.perf_counter()
        pairs = self.tracker.update(detections)
        now_s = frame.index / self.settings.camera.fps  # video time: replays are repeatable
        self._take_descriptors(now_s)
        to_identify = [(i, t) for i, t in pairs if self.tracker.needs_identity(t, now_s)]
        aligned = {i: models.aligner.align_one(frame.image, detections, i)
                   for i, t in pairs if t.state == "known" or (i, t) in to_identify}
        if to_identify and self.worker is not None and self.worker.alive:
            for i, track in to_identify:  # results arrive a few frames later
                track.pending = self.worker.submit(track.track_id, aligned[i].chip)
                self.stats.descriptors += track.pending
        elif to_identify:
            if self.worker is not None:
                log.error("descriptor_worker_died", action="computing descriptors inline")
                self.worker = None
            descriptors = models.encoder.encode([aligned[i].chip for i, _ in to_identify])
            for (_, track), match in zip(to_identify, self.gallery.match(descriptors)):
                self.tracker.set_identity(track, match, now_s)
            self.stats.descriptors += len(to_identify)
        identified = time.perf_counter()
        known = [(i, t) for i, t in pairs if t.state == "known"]
        self.stats.unknown_faces += sum(t.state == "unknown" for _, t in pairs)
        observations = []
        if known:
            vectors = models.classifier.vectors([aligned[i].crop for i, _ in known])
            at = self.clock.now()
            observations = [(t.person_id, v, at) for (_, t), v in zip(known, vectors)]
        del aligned  # crops of every face, known or not, end with the frame
        classified = time.perf_counter()
        grades = self.analytics.observe(observations) + self.analytics.tick()
        if grades:
            queued, dropped = queue_alerts(self.store, grades, self.settings, self.key,
                                           self.clock.now())
            self.stats.grades += len(grades)
            self.stats.alerts_queued += queued
            self.publisher.note_dropped(dropped)
            if queued:
                self.publisher.wake()
            if self.on_grades is not None:
                self.on_grades(grades)
        done = time.perf_counter()
        self._count(frame, len(detections), known, (started, detected, identified, classified,
                                                    done))
        return grades

    def _take_descriptors(self, now_s: float) -> None:
        if self.worker is None:
            return
        ready = self.worker.poll()
        if not ready:
            return
        matches = self.gallery.match(np.stack([descriptor for _, descriptor in ready]))
        for (track_id, _), match in zip(ready, matches):
            track = self.tracker.by_id(track_id)
            if track is not None:  # the face may have left meanwhile
                self.tracker.set_identity(track, match, now_s)

    def _refresh_people(self) -> None:
        """Take up enrolments and erasures made while running (`edge enroll`, `edge forget`)."""
        signature = self.store.people_signature()
        if signature == self._people_signature:
            return
        self._people_signature = signature
        person_ids, templates = self.store.templates()
        gone = set(self.gallery.people) - set(person_ids)
        self.gallery = Gallery(person_ids, templates, self.settings.identity.threshold)
        for person in gone:
            self.tracker.forget_person(person)
            self.analytics.aggregator.forget(person)
            self.stats.people_this_hour.discard(person)
        log.info("gallery_reloaded", enrolled=len(self.gallery.people), forgotten=len(gone))

    def _count(self, frame: Frame, faces: int, known: list, marks: tuple[float, ...]) -> None:
        stats = self.stats
        stats.frames += 1
        stats.faces += faces
        stats.faces_analysed += len(known)
        this_hour = hour_start(self.clock.now(), self.analytics.aggregator.zone)
        if this_hour != self._hour_of_people:
            stats.people_this_hour.clear()
            self._hour_of_people = this_hour
        stats.people_this_hour.update(t.person_id for _, t in known)  # a count is reported
        for stage, (begin, end) in zip(STAGES[:4], itertools.pairwise(marks)):
            stats.latency_ms[stage].append((end - begin) * 1000)
        stats.latency_ms["frame"].append((marks[-1] - marks[0]) * 1000)
        elapsed = time.monotonic() - stats.started
        stats.fps = stats.frames / elapsed if elapsed > 0 else 0.0

    def _metrics(self) -> dict[str, float | None]:
        hours = max((time.monotonic() - self.stats.started) / 3600, 1e-9)
        return {"frames_per_s": round(self.stats.fps, 2),
                "faces_per_h": round(self.stats.faces_analysed / hours, 1),
                "inference_ms": self.stats.percentile("frame", 50),
                "camera_reconnects": self.source.reconnects}

    def _report_status(self, state: str) -> None:
        """status.json for `edge status`: counts and rates only, never who was seen."""
        stats = self.stats
        counts = self.store.outbox_counts()
        status = {
            "state": state, "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": self.settings.device.id, "camera": safe_source_name(
                self.settings.camera.source), "frames": stats.frames,
            "frames_per_s": round(stats.fps, 2), "frames_dropped": stats.frames_dropped,
            "camera_reconnects": self.source.reconnects, "tracks": len(self.tracker.tracks),
            "people_seen_this_hour": len(stats.people_this_hour),
            "faces_analysed": stats.faces_analysed, "unknown_face_frames": stats.unknown_faces,
            "descriptors_computed": stats.descriptors, "grades": stats.grades,
            "alerts_queued": stats.alerts_queued, "outbox": counts,
            "mqtt_connected": self.publisher.connected.is_set(),
            "alerts_delivered": self.publisher.delivered,
            "latency_ms_p50": {s: _round(stats.percentile(s, 50)) for s in STAGES},
            "latency_ms_p99": {s: _round(stats.percentile(s, 99)) for s in STAGES},
            "uptime_s": round(time.monotonic() - stats.started, 1),
            "clock": self.clock.now().isoformat(timespec="seconds"),
        }
        write_status(self.state_dir, status)
        self.notifier.status(f"{stats.fps:.1f} fps, {len(stats.people_this_hour)} people this "
                             f"hour, outbox {sum(counts.values())}")

    def shutdown(self) -> None:
        """Clean stop: flush partial hours, say `stopped`, close the camera and the store."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        self._stop.set()
        self.notifier.stopping()
        self.analytics.flush()
        self.publisher.stop()
        self.source.close()
        self._report_status("stopped")
        if self.worker is not None:
            self.worker.close()
        self.store.close()
        self.models.close()
        log.info("service_stopped", frames=self.stats.frames)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def write_status(state_dir: Path, status: dict[str, Any]) -> None:
    path = state_dir / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(status, handle, indent=1)
    tmp.replace(path)


def read_status(state_dir: Path) -> dict[str, Any]:
    path = state_dir / STATUS_FILE
    if not path.is_file():
        raise EdgeError(f"{path}: no status yet", "is `edge run` running with this state_dir?")
    return json.loads(path.read_text())
