#!/usr/bin/env python3
"""Fault drill: the real service on the generated 14 s clip (28 replayed hours, both
sample people enrolled), a real mosquitto and a persistent subscriber, under one fault at a
time. Every graded hour is alerted (``mqtt.min_level = 0``), so hours and alerts can be
counted end to end.

Usage: .venv/bin/python tools/fault_drill.py [--only NAME ...]

Per scenario: hours stored per person, alerts sent (graded hours committed to the outbox),
received (unique message ids at the subscriber), lost, and duplicated copies.

- baseline: no fault.
- broker: the broker is down when the service starts, comes up at hour 8, is stopped at
  hour 14 and comes back at hour 18.
- disk: the state store's disk (a 2 MB tmpfs; needs root) fills at hour 8, is freed at 16.
- clock-1970: the clock starts in 1970 and NTP sets it at hour 12 of the clip.
- clock-back: the clock is stepped back 6 hours at hour 14.
- sigkill: `edge run` as a process, SIGKILLed 5 times at random frames and started again as
  systemd would, the replay clock going on from where the last report left it.
- camera-gone: the clip (looping) disappears 3 times at a random frame of its second pass;
  the run ends with exit 1 when it starts the clip again, and the clip is back for the
  restart.

A foreign write-ahead log is drilled by tests/test_faults_store.py.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.core.clock import SimulatedClock
from edge.core.logs import configure_logging
from edge.demos.broker import Broker, wait_until
from edge.demos.clip import demo_plan, enroll_sample_people, write_clip
from edge.demos.disk import can_mount, small_disk
from edge.publish.payload import RiskAlert
from edge.service.lifecycle import Service
from edge.settings import Settings
from edge.store import Store
from edge.vision.loader import VisionModels

SPEED = 7200.0  # a second of clip is two hours
FPS = 24


def frame_of(hour: float) -> int:
    return round(hour * 3600 / SPEED * FPS)


class Collector:
    """A subscriber with a persistent MQTT 5 session: the broker keeps what it missed."""

    def __init__(self, port: int, name: str) -> None:
        self.copies: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"drill-{name}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 2)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, clean_start=False, properties=properties)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any,
                    _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe("edge/+/+/risk/#", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.copies.append(RiskAlert.model_validate_json(message.payload).message_id)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def drill(name: str, work: Path, models: VisionModels, models_dir: Path,
          state: Path, faults: dict[int, Callable[[Service, dict[str, Any]], None]],
          clock: SimulatedClock | None = None, broker_down_at_start: bool = False
          ) -> dict[str, Any]:
    clip = work / "clip.avi"
    with Store(state) as store:
        enroll_sample_people(store, models, "DRILL")
    broker = Broker(persistence=True).start()
    collector = Collector(broker.port, name)
    assert wait_until(lambda: collector.client.is_connected(), 10)
    if broker_down_at_start:
        broker.stop()
    settings = Settings.model_validate({
        "device": {"id": "drill", "site": "lab"}, "models": {"dir": models_dir},
        "camera": {"source": f"file://{clip}", "replay_speed": SPEED},
        "analytics": {"min_history_hours": 8}, "identity": {"worker_process": False},
        "mqtt": {"port": broker.port, "min_level": 0, "stats_interval_s": 3600},
        "storage": {"state_dir": state},
        "deployment": {"purpose": "research", "legal_basis": "fault drill"}})
    context: dict[str, Any] = {"broker": broker}

    def on_progress(service: Service) -> None:
        action = faults.get(service.stats.frames)
        if action is not None:
            action(service, context)

    service = Service(settings, clock=clock, on_progress=on_progress)
    began = time.monotonic()
    code = service.run()
    if broker.process is None:
        broker.start()
    with Store(state) as store:
        hours = {p.person_id: store.hours_kept(p.person_id) for p in store.people()}
        sent = store.grades()
    wait_until(lambda: len(set(collector.copies)) >= len(
        [g for g in sent if g.status == "graded"]), 30)
    collector.stop()
    broker.close()
    sent_graded = [g for g in sent if g.status == "graded"]
    received = set(collector.copies)
    return {"scenario": name, "exit": code, "hours": hours, "sent": len(sent_graded),
            "received": len(received), "lost": max(len(sent_graded) - len(received), 0),
            "duplicated": len(collector.copies) - len(received),
            "wall_s": round(time.monotonic() - began, 1)}


def drill_restarts(name: str, work: Path, models: VisionModels, models_dir: Path,
                   state: Path, faults: int, kind: str, seed: int = 7) -> dict[str, Any]:
    """Runs of `edge run` that end in a fault (SIGKILL, or the clip gone), each followed by
    a start as systemd would make it, then one last run to the end of the clip."""
    rng = random.Random(seed)
    clip = work / "clip.avi"
    spare = work / "clip-spare.avi"
    spare.write_bytes(clip.read_bytes())
    with Store(state) as store:
        enroll_sample_people(store, models, "DRILL")
    broker = Broker(persistence=True).start()
    collector = Collector(broker.port, name)
    assert wait_until(lambda: collector.client.is_connected(), 10)
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    edge = Path(sys.executable).with_name("edge")
    codes = []
    began = time.monotonic()
    for attempt in range(faults + 1):
        last = attempt == faults
        config = work / f"{name}-{attempt}.toml"
        config.write_text(
            '[device]\nid = "drill"\nsite = "lab"\n'
            f'[camera]\nsource = "file://{clip}"\nreplay_speed = {SPEED}\n'
            f'loop = {"false" if last else "true"}\n'
            f'replay_start = {start.strftime("%Y-%m-%dT%H:%M:%SZ")}\n'
            f'[models]\ndir = "{models_dir}"\n'
            '[analytics]\nmin_history_hours = 8\nring_weeks = 8\n'
            '[identity]\nworker_process = false\n'
            f'[mqtt]\nport = {broker.port}\nmin_level = 0\nstats_interval_s = 3600\n'
            f'[storage]\nstate_dir = "{state}"\npartials_every_s = 1\n'
            '[deployment]\npurpose = "research"\nlegal_basis = "fault drill"\n')
        (state / "status.json").unlink(missing_ok=True)  # the last run's counts are not ours
        process = subprocess.Popen([str(edge), "--config", str(config), "run"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not last:
            target = rng.randint(40, 300) if kind == "sigkill" else rng.randint(340, 600)
            wait_until(lambda t=target, p=process: _frames(state) >= t or p.poll() is not None,
                       120)
            if kind == "sigkill":
                process.send_signal(signal.SIGKILL)
            else:
                clip.unlink()
        codes.append(process.wait(120))
        if not clip.exists():
            clip.write_bytes(spare.read_bytes())
        start = _resume_at(state)
    with Store(state) as store:
        hours = {p.person_id: store.hours_kept(p.person_id) for p in store.people()}
        sent = [g for g in store.grades() if g.status == "graded"]
    wait_until(lambda: len(set(collector.copies)) >= len(sent), 30)
    collector.stop()
    broker.close()
    received = set(collector.copies)
    return {"scenario": name, "exit": ",".join(map(str, codes)), "hours": hours,
            "sent": len(sent), "received": len(received),
            "lost": max(len(sent) - len(received), 0),
            "duplicated": len(collector.copies) - len(received),
            "wall_s": round(time.monotonic() - began, 1)}


def _resume_at(state: Path) -> datetime:
    """Where the replay clock goes on after a run: past everything stored or open, as the
    wall clock would be after a restart (it never goes back)."""
    status = json.loads((state / "status.json").read_text())
    moments = [datetime.fromisoformat(status["clock"])]
    with Store(state) as store:
        newest = store.newest_hour()
        moments += [] if newest is None else [newest + timedelta(hours=1)]
        moments += [p.hour_start + timedelta(hours=1) for p in store.load_partials()]
    return max(moments) + timedelta(minutes=1)


def _frames(state: Path) -> int:
    try:
        return int(json.loads((state / "status.json").read_text()).get("frames", 0))
    except (OSError, ValueError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--models", default="engines")
    args = parser.parse_args()
    configure_logging("drill", "ERROR")
    models_dir = Path(args.models).resolve()
    models = VisionModels.load(Settings.model_validate({"models": {"dir": models_dir}}))
    ntp = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)

    def broker_faults() -> dict[int, Any]:
        return {frame_of(8): lambda _s, c: c["broker"].start(),
                frame_of(14): lambda _s, c: c["broker"].stop(),
                frame_of(18): lambda _s, c: c["broker"].start()}

    def ntp_at(hour: float, clock: SimulatedClock) -> dict[int, Any]:
        def set_clock(service: Service, _c: dict[str, Any]) -> None:
            clock.step(ntp)
            service.replay_start = ntp - timedelta(seconds=frame_of(hour) * SPEED / FPS)
        return {frame_of(hour): set_clock}

    def step_back(hours: float, at: float) -> dict[int, Any]:
        def back(service: Service, _c: dict[str, Any]) -> None:
            assert isinstance(service.clock, SimulatedClock)
            service.clock.step(service.clock.now() - timedelta(hours=hours))
            service.replay_start -= timedelta(hours=hours)
        return {frame_of(at): back}

    results = []
    with tempfile.TemporaryDirectory(prefix="edge-drill-") as folder:
        work = Path(folder)
        write_clip(demo_plan(seconds=14, anomaly_from_s=10), work / "clip.avi")
        wanted = set(args.only or ["baseline", "broker", "disk", "clock-1970", "clock-back",
                                   "sigkill", "camera-gone"])
        if "baseline" in wanted:
            results.append(drill("baseline", work, models, models_dir, work / "s1", {}))
        if "broker" in wanted:
            results.append(drill("broker", work, models, models_dir, work / "s2",
                                 broker_faults(), broker_down_at_start=True))
        if "disk" in wanted and can_mount():
            with small_disk(work / "disk", 2048) as disk:
                results.append(drill("disk", work, models, models_dir, disk.path / "state", {
                    frame_of(8): lambda _s, _c: disk.fill(),
                    frame_of(16): lambda _s, _c: disk.free()}))
        if "clock-1970" in wanted:
            clock = SimulatedClock(datetime(1970, 1, 1, tzinfo=timezone.utc))
            results.append(drill("clock-1970", work, models, models_dir, work / "s4",
                                 ntp_at(12, clock), clock=clock))
        if "clock-back" in wanted:
            results.append(drill("clock-back", work, models, models_dir, work / "s5",
                                 step_back(6, 14)))
        if "sigkill" in wanted:
            results.append(drill_restarts("sigkill", work, models, models_dir, work / "s6",
                                          5, "sigkill"))
        if "camera-gone" in wanted:
            results.append(drill_restarts("camera-gone", work, models, models_dir,
                                          work / "s7", 3, "camera"))
    print(f"{'scenario':12} {'exit':>4} {'hours (astronaut, cameraman)':>29} {'sent':>5} "
          f"{'received':>8} {'lost':>5} {'dup.':>5} {'wall s':>7}")
    for r in results:
        hours = f"{r['hours'].get('astronaut', 0)}, {r['hours'].get('cameraman', 0)}"
        print(f"{r['scenario']:12} {r['exit']:>4} {hours:>29} {r['sent']:>5} "
              f"{r['received']:>8} {r['lost']:>5} {r['duplicated']:>5} {r['wall_s']:>7}")


if __name__ == "__main__":
    main()
