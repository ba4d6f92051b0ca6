"""The device service's lifecycle: start every part in order, run the loop, stop them all.

capture thread -> bounded queue (newest frame wins for cameras; files wait) -> frame
pipeline (detect, tracks, identity once per track, expression) -> hourly aggregation and
grading -> store -> outbox -> publisher thread. Nothing is unbounded: the frame queue holds
one frame, the latency windows are fixed deques, and tracks end when their face leaves.

``start()`` opens the parts one by one and registers each one's clean-up as it goes
(``contextlib.ExitStack``), so a failure half-way (a bad ``camera.source`` after the
descriptor worker has started, say) closes exactly what was already open; ``stop()``
closes everything in reverse order. ``run()`` is start, loop, stop.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from edge.analytics.risk import RiskAnalytics, StoreUnavailable
from edge.capture.open import open_source
from edge.capture.pipelines import safe_source_name
from edge.capture.sources import Frame
from edge.core.clock import Clock, SimulatedClock, SystemClock
from edge.core.faults import Fault
from edge.core.logs import get_logger
from edge.core.records import RiskGrade
from edge.publish.client import Publisher
from edge.publish.outbox import alerts_for
from edge.sdnotify import Notifier
from edge.secrets import device_key
from edge.service.clockcheck import ClockCheck
from edge.service.lawful import check_lawful_use
from edge.service.status import LoopStats, write_status
from edge.settings import Settings
from edge.store import Store, StoreOpenError
from edge.vision.descriptor_worker import DescriptorWorker
from edge.vision.identity import Gallery
from edge.vision.loader import VisionModels
from edge.vision.pipeline import FramePipeline
from edge.vision.track import FaceTracker

log = get_logger(__name__)
STORE_RETRY_S = 5.0  # a start on a full disk tries the store again this often


class Service:
    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 notifier: Notifier | None = None, max_frames: int | None = None,
                 on_grades: Callable[[list[RiskGrade]], None] | None = None,
                 on_progress: Callable[[Service], None] | None = None) -> None:
        """Nothing is opened here; ``start()`` does that. The lawful-use gate comes first."""
        check_lawful_use(settings)
        self.settings = settings
        self.state_dir = settings.storage.state_dir
        if clock is None and settings.camera.replay_speed is not None:
            clock = SimulatedClock(settings.camera.replay_start or datetime.now(timezone.utc))
        self.clock = clock or SystemClock()
        self.replay_start = self.clock.now()
        self.notifier = notifier or Notifier()
        self.max_frames = max_frames
        self.on_grades = on_grades
        self.on_progress = on_progress
        self.stats = LoopStats()
        self._stop = threading.Event()
        self._parts = contextlib.ExitStack()
        self._started = False
        self._frames: queue.Queue[Frame | None] = queue.Queue(maxsize=1)
        self._capture: threading.Thread | None = None
        self.capture_failure: str | None = None  # why the camera stopped, if it failed
        self.publisher_fault = Fault("publisher_stuck", "publisher_alive",
                                     "no more watchdog pings: systemd restarts the service")
        self.storage = Fault("storage_failed", "storage_recovered", "closed hours are kept "
                             "in memory and stored when space is back")
        self.clock_fault = Fault("clock_untrusted", "clock_trusted", "observations are not "
                                 "aggregated until the clock is right")
        self._people_signature: tuple[int, int, int] | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Service:
        """Open store, models, pipeline (and descriptor worker), analytics, publisher and
        camera, in that order; on any failure close what was opened and re-raise."""
        if self._started:
            return self
        self._started = True
        settings = self.settings
        try:
            self.store = self._parts.enter_context(self._open_store())
            self.models = VisionModels.load(settings)
            self._parts.callback(self.models.close)
            self.pipeline = FramePipeline(
                self.models, self._load_gallery(),
                tracker=FaceTracker.for_identity(settings.identity),
                worker=(DescriptorWorker(self.models.models_dir,
                                               self.models.descriptor_model)
                        if settings.identity.worker_process else None),
                detect_every=settings.detection.interval)
            self._parts.callback(self.pipeline.close)
            self.key = device_key(self.state_dir)
            self.clock_check = ClockCheck(self.store.newest_hour())
            self.analytics = RiskAnalytics(
                self.store, settings.analytics, ZoneInfo(settings.device.timezone), self.clock,
                alerts_for=lambda grades: alerts_for(grades, settings, self.key,
                                                     self.clock.now()),
                max_outbox=settings.mqtt.outbox_max_messages)
            self._parts.callback(self._save_open_hours)  # open hours saved for the restart
            self.publisher = Publisher(settings, self.state_dir, clock=self.clock)
            self._parts.callback(self.publisher.stop)
            self.source, self.live, description = open_source(settings.camera)
            self._parts.callback(self.source.close)
            self._parts.callback(self._report_status, "stopped")  # the first thing stop() does
            log.info("camera_pipeline", source=safe_source_name(settings.camera.source),
                     pipeline=safe_source_name(description))
            self.publisher.start()
            self._capture = threading.Thread(target=self._read_camera, name="capture",
                                             daemon=True)
            self._capture.start()
        except BaseException:
            self._parts.close()
            raise
        return self

    def _open_store(self) -> Store:
        """The state store; on a full disk, wait for space (systemd would give up after a
        few failed starts and leave the box down until a person came)."""
        while True:
            try:
                store = Store(self.state_dir, owner=True)
            except StoreOpenError as exc:
                if not exc.out_of_space:
                    raise
                if self.storage.problem is None:
                    self.notifier.status("waiting: the state store's disk is full")
                self.storage.update(exc.message, action="waiting for space; trying again "
                                    f"every {STORE_RETRY_S:g} s")
                if self._stop.wait(STORE_RETRY_S):
                    raise
                continue
            self.storage.update(None)
            return store

    def stop(self) -> None:
        """Clean stop: camera, publisher (says ``stopped``), open hours flushed, worker,
        models, a last status, store; each exactly once, in reverse order of opening."""
        self._stop.set()
        if not self._started:
            return
        self.notifier.stopping()
        self._parts.close()
        if self._capture is not None:
            self._capture.join(timeout=5)
            self._capture = None
        log.info("service_stopped", frames=self.stats.frames)

    def request_stop(self, *_args: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until the source ends, ``max_frames``, or SIGTERM/SIGINT. Returns the exit code:
        0 for those, 1 when the camera failed (a crashed capture thread, or a live camera
        that ended), so that systemd's ``Restart=on-failure`` starts the service again."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        try:
            self._loop()
        finally:
            self.stop()
        if self.capture_failure is not None:
            log.error("service_failed", reason=self.capture_failure,
                      action="exit 1: systemd restarts the service")
            return 1
        return 0

    # --- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        ready = False
        last_status = last_watchdog = last_metrics = 0.0
        last_partials = time.monotonic()
        while not self._stop.is_set():
            try:
                frame = self._frames.get(timeout=1.0)
            except queue.Empty:  # no frame: still say so (status and stats do not freeze)
                last_status, last_metrics = self._report(last_status, last_metrics)
                continue
            if frame is None:
                break
            if not ready:
                ready = True
                self.notifier.ready(f"camera delivering; {len(self.pipeline.gallery.people)} "
                                    "people enrolled")
                log.info("service_ready", enrolled=len(self.pipeline.gallery.people))
            self.process(frame)
            now = time.monotonic()
            if now - last_watchdog >= 1.0:
                # only while frames are really processed and alerts can really leave: a dead
                # or stuck publisher stops the pings, and systemd restarts the service
                self.publisher_fault.update(
                    None if self.publisher.alive else
                    f"the MQTT publisher's loop is stuck or dead ({self.publisher.restarts} "
                    "restarts)")
                if self.publisher_fault.problem is None:
                    self.notifier.watchdog()
                last_watchdog = now
            if now - last_status >= 2.0:
                self._refresh_people()
            last_status, last_metrics = self._report(last_status, last_metrics)
            if now - last_partials >= self.settings.storage.partials_every_s:
                self._save_open_hours()  # a crash loses at most this much of an open hour
                last_partials = now
            if self.on_progress is not None:
                self.on_progress(self)
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                break

    def _report(self, last_status: float, last_metrics: float) -> tuple[float, float]:
        """status.json every 2 s and the stats topic's figures every 5 s, frames or not;
        returns when each was last done."""
        now = time.monotonic()
        if now - last_status >= 2.0:
            self._report_status("running")
            last_status = now
        if now - last_metrics >= 5.0:
            self.publisher.update_metrics(**self.stats.metrics(self.source.reconnects,
                                                              self.faults()))
            last_metrics = now
        return last_status, last_metrics

    def process(self, frame: Frame) -> list[RiskGrade]:
        """One frame through the pipeline and the analytics; the grades of hours it closed."""
        self._advance_replay_clock(frame)
        (result,) = self.pipeline.process([frame.image],
                                          [frame.index / self.settings.camera.fps])
        started, started_cpu = time.perf_counter(), time.thread_time()
        at = self.clock.now()
        self.clock_fault.update(self.clock_check.problem(at))
        grades: list[RiskGrade] = []
        if self.clock_fault.problem is None:  # else nothing can be dated: nothing aggregated
            try:
                grades = (self.analytics.observe(
                    (f.person_id, f.vector, at) for f in result.analysed
                    if f.person_id is not None and f.vector is not None) + self.analytics.tick())
            except StoreUnavailable as exc:  # the hours wait in memory; retried every few s
                self.storage.update(str(exc))
        if grades:
            self.storage.update(None)  # hours were written: the store takes writes again
            self.clock_check.saw_hours(g.hour_start for g in grades)
            self._took_grades(grades)
        analytics_ms = (time.perf_counter() - started) * 1000
        self.stats.count_frame(result, self.analytics.hour_of(at), analytics_ms,
                               (time.thread_time() - started_cpu) * 1000)
        return grades

    def _save_open_hours(self) -> None:
        try:
            self.analytics.flush()
        except sqlite3.OperationalError as exc:  # a full disk: they stay in memory
            self.storage.update(f"cannot save the open hours: {exc}")
        else:
            if not self.analytics.unstored_hours:
                self.storage.update(None)

    def _advance_replay_clock(self, frame: Frame) -> None:
        """A replayed file moves the simulated clock by replay_speed / fps per frame."""
        speed = self.settings.camera.replay_speed
        if speed is None or not isinstance(self.clock, SimulatedClock):
            return
        moment = self.replay_start + timedelta(
            seconds=frame.index * speed / self.settings.camera.fps)
        if moment > self.clock.now():
            self.clock.set(moment)

    def _took_grades(self, grades: list[RiskGrade]) -> None:
        """The analytics committed these grades and their alerts together; report them."""
        queued = self.analytics.alerts_queued - self.stats.alerts_queued
        dropped = self.analytics.alerts_dropped - self.stats.alerts_dropped
        self.stats.grades += len(grades)
        self.stats.alerts_queued += queued
        self.stats.alerts_dropped += dropped
        if dropped:
            self.publisher.note_dropped(dropped)
        if queued:
            self.publisher.wake()
        if self.on_grades is not None:
            self.on_grades(grades)

    # --- the capture thread ----------------------------------------------------------------------
    def _read_camera(self) -> None:
        every = self.settings.camera.sample_every
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    if self.live and not self._stop.is_set():
                        self.capture_failure = "the live camera stopped delivering"
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
            self.capture_failure = f"capture failed: {exc!r}"
            log.error("capture_failed", error=repr(exc))
        finally:
            with contextlib.suppress(queue.Full):
                self._frames.put(None, timeout=1)

    # --- enrolments, erasures, status ------------------------------------------------------------
    def _load_gallery(self) -> Gallery:
        self._people_signature = self.store.people_signature()
        person_ids, templates = self.store.templates()
        if not person_ids:
            log.warning("nobody_enrolled", hint="use `edge enroll`; every face is dropped")
        return Gallery(person_ids, templates, self.settings.identity.threshold)

    def _refresh_people(self) -> None:
        """Take up enrolments and erasures made while running (`edge enroll`, `edge forget`)."""
        if self.store.people_signature() == self._people_signature:
            return
        before = set(self.pipeline.gallery.people)
        gallery = self._load_gallery()
        gone = before - set(gallery.people)
        self.pipeline.set_gallery(gallery, forgotten=gone)
        for person in gone:
            self.analytics.forget(person)
            self.stats.people_this_hour.discard(person)
        log.info("gallery_reloaded", enrolled=len(gallery.people), forgotten=len(gone))

    def faults(self) -> list[str]:
        """The faults in force now, by name, for the stats topic."""
        return [name for name, on in (("camera", self.source.problem is not None),
                                      ("storage", self.storage.problem is not None),
                                      ("clock", self.clock_fault.problem is not None),
                                      ("publisher", self.publisher_fault.problem is not None))
                if on]

    def _outbox_counts(self) -> dict[str, int]:
        try:
            return self.store.outbox_counts()
        except sqlite3.Error:
            return {}

    def _report_status(self, state: str) -> None:
        """status.json for `edge status`, and the one-line systemd status."""
        tracker = self.pipeline.tracker
        if state == "running" and self.publisher_fault.problem is not None:
            state = f"degraded: {self.publisher_fault.problem} (systemd restarts the service)"
        elif state == "running" and self.source.problem is not None:
            state = f"degraded: no frames from the camera ({self.source.problem})"
        elif state == "running" and self.clock_fault.problem is not None:
            state = f"degraded: {self.clock_fault.problem}"
        elif state == "running" and self.storage.problem is not None:
            state = "degraded: the state store takes no writes (disk full?); hours wait in memory"
        counts = self._outbox_counts()
        status = {
            "state": state, "device": self.settings.device.id,
            "camera": safe_source_name(self.settings.camera.source),
            "camera_reconnects": self.source.reconnects,
            "camera_problem": self.source.problem,
            "tracks": len(tracker.tracks) if tracker else 0,
            **self.stats.status(), "outbox": counts,
            "mqtt_connected": self.publisher.connected.is_set(),
            "alerts_delivered": self.publisher.delivered,
            "publisher_restarts": self.publisher.restarts,
            "clock": self.clock.now().isoformat(timespec="seconds"),
            "storage_problem": self.storage.problem,
            "clock_problem": self.clock_fault.problem,
            "hours_waiting_for_storage": self.analytics.unstored_hours,
        }
        try:
            write_status(self.state_dir, status)
        except OSError as exc:  # a full disk: the log line above says what is going on
            self.storage.update(self.storage.problem or f"cannot write status: {exc}")
        self.notifier.status(f"{self.stats.fps:.1f} fps, {len(self.stats.people_this_hour)} "
                             f"people this hour, outbox {sum(counts.values())}")

