"""The embedded-default demo (`make demo`): the real service on a generated clip.

1. A 60 s 640x480 clip of the astronaut, the cameraman and a stranger (scikit-image's
   photos), moving, scaling and changing light; from second 45 the astronaut's mouth is
   turned upside down, so her smile fades (documented in edge/democlip.py).
2. The astronaut and the cameraman are enrolled from altered copies of their photos with
   a demo consent reference; the stranger is not, and is dropped unanalysed.
3. A throwaway mosquitto on a free loopback port; the central collector (`edge central
   run`'s, without its console) storing every alert in its database (SQLite in
   ``central.state_dir``, which stays after the demo), and the live view (`edge alerts`)
   printing each alert as it arrives.
4. The real service (`edge run`) on the clip, CPU back end, with a replay clock on which a
   second of clip is two hours: the minute of clip stands for five days, so grading
   starts after the first 12 s (24 hours of history) and the fading smile is graded.

Everything else lives in a temporary folder that is removed at the end; the demo ends by
saying how to look at the stored alerts in the web console.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from edge.central.alerts import AlertView, watch_alerts
from edge.central.collector import Collector
from edge.central.database import Database
from edge.core.errors import EdgeError
from edge.demos.broker import Broker, mosquitto_available
from edge.demos.clip import demo_plan, enroll_sample_people, write_clip
from edge.service.lifecycle import Service
from edge.settings import Settings
from edge.store import Store
from edge.vision.loader import VisionModels

DEMO_CONSENT = "DEMO-CONSENT-0001"
REPLAY_SPEED = 7200.0  # one second of clip = two hours
CLIP_SECONDS = 60.0
ANOMALY_FROM_S = 45.0


def _say(message: str = "") -> None:
    print(message, flush=True)


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, every 10 % in a log."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def update(self, done: int, note: str) -> None:
        share = done / self.total
        step = int(share * 10)
        if not self.tty and step == self.shown:
            return
        self.shown = step
        bar = "#" * int(share * 30) + "." * (30 - int(share * 30))
        end = "\r" if self.tty and done < self.total else "\n"
        print(f"[{bar}] {share:4.0%} {note}", end=end, file=sys.stderr, flush=True)


def enroll_demo_people(settings: Settings) -> None:
    models = VisionModels.load(settings)
    with Store(settings.storage.state_dir) as store:
        for person, count in enroll_sample_people(store, models, DEMO_CONSENT,
                                                  prefix="demo-").items():
            _say(f"  enrolled {person}: {count} templates from altered copies of the photo "
                 f"(consent {DEMO_CONSENT})")
    models.close()


def run_demo(base: Settings, clip_seconds: float = CLIP_SECONDS) -> int:
    if not mosquitto_available():
        raise EdgeError("the demo needs mosquitto for its throwaway broker",
                        "run `make demo` as root, or: sudo apt-get install -y mosquitto")
    began = time.monotonic()
    _say("edge demo: camera clip -> faces -> 10-D vectors -> hourly LOF/3-sigma -> MQTT")
    with tempfile.TemporaryDirectory(prefix="edge-demo-") as folder:
        work = Path(folder)
        plan = demo_plan(clip_seconds, ANOMALY_FROM_S * clip_seconds / CLIP_SECONDS)
        clip = write_clip(plan, work / "demo.avi")
        _say(f"  clip: {plan.frames} frames 640x480 at {plan.fps} fps: astronaut, cameraman, "
             f"stranger; the astronaut's smile fades from second {plan.anomaly_from_s:g}")
        broker = Broker(persistence=False).start()
        settings = Settings(**{
            **base.model_dump(exclude={"camera", "mqtt", "storage", "deployment", "device"}),
            "device": {"id": "demo-entrance", "site": "demo"},
            "camera": {"source": f"file://{clip}", "replay_speed": REPLAY_SPEED},
            "mqtt": {"port": broker.port, "stats_interval_s": 3600},
            "storage": {"state_dir": work / "state"},
            "deployment": {"purpose": "research",
                           "legal_basis": "demonstration on public-domain photos"}})
        try:
            enroll_demo_people(settings)
            _say(f"  broker: mosquitto on 127.0.0.1:{broker.port}; the subscriber below prints "
                 "every alert it receives")
            _say(f"  replay: 1 s of clip = {REPLAY_SPEED / 3600:g} h; grading starts after "
                 f"{settings.analytics.min_history_hours} h of history\n")
            central = base.central.model_copy(update={
                "port": broker.port, "client_id": "edge-demo-central"})
            database = Database.from_settings(central)
            collector = Collector(central, database).start()
            collector.subscribed.wait(10)
            view = AlertView()
            stop = threading.Event()
            watcher = threading.Thread(target=watch_alerts, daemon=True, args=(
                "127.0.0.1", broker.port, settings.mqtt.topic_prefix),
                kwargs={"stop": stop, "view": view})
            watcher.start()
            time.sleep(0.5)
            progress = Progress(plan.frames)
            service = Service(settings, on_progress=lambda s: progress.update(
                s.stats.frames, f"frame {s.stats.frames}/{plan.frames}, simulated "
                f"{s.clock.now():%a %H:%M}, {s.publisher.delivered} alerts sent"))
            service.run()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                    len(view.seen) < service.stats.alerts_queued
                    or collector.counts.alerts_stored < service.stats.alerts_queued):
                time.sleep(0.1)
            stop.set()
            watcher.join(5)
            collector.stop()
            database.close()
            _summary(settings, service, view, time.monotonic() - began)
            _console_hint(collector, database)
            ok = any(a.level > 0 for a in view.alerts) and collector.counts.alerts_stored > 0
        finally:
            broker.close()
    _say("  The temporary folder (clip, the device's state store, broker) is removed.")
    return 0 if ok else 1


def _console_hint(collector: Collector, database: Database) -> None:
    _say(f"\n  the central collector stored {collector.counts.alerts_stored} alerts in "
         f"{database.where}; to look at them in the web console:")
    _say("      .venv/bin/edge central user add me --role admin   (once; asks for a password)")
    _say(f"      .venv/bin/edge central run                        (then open "
         f"http://{collector.settings.listen_host}:{collector.settings.listen_port}/; "
         "Ctrl-C ends it)")


def _summary(settings: Settings, service: Service, view: AlertView, wall_s: float) -> None:
    stats = service.stats
    with Store(settings.storage.state_dir) as store:
        people = [p.person_id for p in store.people()]
        rows = []
        for person in people:
            grades = store.grades(person)
            graded = [g for g in grades if g.status == "graded"]
            flagged = [g for g in graded if g.level > 0]
            rows.append((person, store.hours_kept(person), len(graded), len(flagged),
                         max((g.level for g in graded), default=0)))
    _say("\n  person           hours stored  hours graded  hours at risk  highest level")
    for person, hours, graded, flagged, top in rows:
        _say(f"  {person:16} {hours:12d}  {graded:12d}  {flagged:13d}  {top:13d}")
    _say(f"  stranger: seen in {stats.unknown_faces} face-frames, dropped each time, "
         "nothing computed or stored")
    received = sorted(view.alerts, key=lambda a: a.hour_start)
    _say(f"\n  alerts received by the subscriber: {len(received)} "
         f"({view.duplicates} duplicate copies ignored); first: "
         f"{received[0].hour_start + ' level ' + str(received[0].level) if received else '-'}")
    _say(f"  frames {stats.frames}, {stats.fps:.1f} frames/s, descriptors computed "
         f"{stats.descriptors} (when a track needed one), faces analysed "
         f"{stats.faces_analysed}")
    _say(f"  wall time {wall_s:.0f} s")
