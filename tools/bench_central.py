#!/usr/bin/env python3
"""The fleet benchmark: many devices, one broker, one collector, SQLite and PostgreSQL.

Usage: .venv/bin/python tools/bench_central.py [--devices 1000] [--seconds 20]
           [--burst 20000] [--databases sqlite,postgresql] [--json bench-central.json]

Real parts throughout: a throwaway mosquitto (persistence on), `edge central run` in its
own process (as systemd runs it, console off), a throwaway PostgreSQL server, and one real
paho client (MQTT 5, its own connection and thread) per simulated device, publishing real
alert payloads at QoS 1.

Phases, for each database:
1. realistic: the fleet's rate (each device 10 alerts an hour), Poisson arrivals;
2. 100x: a hundred times that rate;
3. burst: ``--burst`` alerts as fast as the devices can publish them: the ingest capacity,
   and the headroom it gives over the realistic rate.
End-to-end latency is from the device's publish (which the real device does as soon as its
outbox commit wakes it: tools/bench_mqtt.py measures that part) to the alert's row being
visible to a reader of the database, polled every 5 ms. The database's size per million
alerts is read off the file (SQLite, after a checkpoint) or the tables (PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.central.database import Database
from edge.demos.broker import Broker, wait_until
from edge.demos.postgres import Postgres

ALERTS_PER_DEVICE_HOUR = 10
# what a central broker needs for this (README "Running the central side"): the collector's
# queue while it is down, and the unacknowledged messages it may hold
BROKER_SETTINGS = ("max_queued_messages 1000000", "max_inflight_messages 1000",
                   "max_connections -1")


@dataclass
class Phase:
    database: str
    phase: str
    alerts: int
    offered_per_s: float
    seconds: float
    stored: int
    ingest_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float


DEVICES_PER_PROCESS = 250  # paho waits with select(): no file descriptor above 1023


def _device_worker(port: int, first: int, count: int, total: int, seed: int,
                   commands: Connection) -> None:
    """A share of the fleet in its own process: one paho client per device."""
    random.seed(seed)
    clients = []
    for number in range(first, first + count):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{number:05d}",
                             protocol=mqtt.MQTTv5)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port, keepalive=120)
        client.loop_start()
        clients.append((number, client))
    commands.send("ready")
    counter = first
    while True:
        command = commands.recv()
        if command is None:
            break
        rate, seconds, burst = command
        sent_at: dict[str, float] = {}
        began = time.time()

        def publish(sent_at: dict[str, float]) -> None:
            nonlocal counter
            number, client = clients[counter % count]
            hour = counter // total
            counter += 1
            person = f"{random.getrandbits(64):016x}"
            message_id = f"{random.getrandbits(128):032x}"
            site = f"site-{number % 20:02d}"
            day = f"2026-11-{1 + hour // 24 % 28:02d}T{hour % 24:02d}"
            payload = json.dumps({
                "kind": "risk", "schema_version": 1, "message_id": message_id,
                "device": f"bench-{number:05d}", "site": site, "person": person,
                "hour_start": f"{day}:00:00Z", "hour_end": f"{day}:59:59Z",
                "level": 1 + counter % 9, "label": "Medium risk", "anomaly": True}).encode()
            sent_at[message_id] = time.time()
            client.publish(f"edge/{site}/bench-{number:05d}/risk/{person}", payload, qos=1)

        if burst:
            for _ in range(burst):
                publish(sent_at)
        else:
            next_at = began
            while time.time() < began + seconds:
                next_at += random.expovariate(rate)
                delay = next_at - time.time()
                if delay > 0:
                    time.sleep(delay)
                publish(sent_at)
        commands.send(sent_at)
    for _number, client in clients:
        client.disconnect()
        client.loop_stop()


class Fleet:
    """The devices, split over processes; ``run`` returns each alert's send time."""

    def __init__(self, port: int, devices: int) -> None:
        # (process, its end of the pipe: a Connection; PipeConnection to the type checker)
        self.workers: list[tuple[multiprocessing.Process, Any]] = []
        self.sent_at: dict[str, float] = {}
        for first in range(0, devices, DEVICES_PER_PROCESS):
            mine, theirs = multiprocessing.Pipe()
            count = min(DEVICES_PER_PROCESS, devices - first)
            process = multiprocessing.Process(target=_device_worker, args=(
                port, first, count, devices, first + 7, theirs), daemon=True)
            process.start()
            self.workers.append((process, mine))
        for _process, pipe in self.workers:
            assert pipe.recv() == "ready"

    def run(self, rate: float, seconds: float, burst: int) -> dict[str, float]:
        share = len(self.workers)
        for _process, pipe in self.workers:
            pipe.send((rate / share, seconds, -(-burst // share) if burst else 0))
        sent: dict[str, float] = {}
        for _process, pipe in self.workers:
            sent.update(pipe.recv())
        self.sent_at.update(sent)
        return sent

    def close(self) -> None:
        for process, pipe in self.workers:
            pipe.send(None)
            process.join(30)


class Visibility:
    """Polls the database every 5 ms: when each alert's row became visible to a reader."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._since = 0.0
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        db = self.database.connection()
        while not self._stop.is_set():
            rows = db.query("SELECT message_id, received_at FROM alerts WHERE received_at > ?",
                            (self._since - 5.0,))
            now = time.time()
            for message_id, received_at in rows:
                if message_id not in self.seen:
                    self.seen[message_id] = now
                    self._since = max(self._since, received_at)
            self._stop.wait(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.database.close()


def run_phase(name: str, database: str, fleet: Fleet, visibility: Visibility, rate: float,
              seconds: float | None, count: int | None) -> Phase:
    began = time.time()
    sent = fleet.run(rate, seconds or 0.0, count or 0)
    ours = list(sent)
    wait_until(lambda: all(m in visibility.seen for m in ours), 120, step=0.05)
    ended = max((visibility.seen.get(m, time.time()) for m in ours), default=time.time())
    latencies = np.array([(visibility.seen[m] - fleet.sent_at[m]) * 1000 for m in ours
                          if m in visibility.seen]) if ours else np.zeros(1)
    stored = sum(m in visibility.seen for m in ours)
    return Phase(database, name, len(ours), rate if count is None else 0.0,
                 round(ended - began, 2), stored, round(stored / max(ended - began, 1e-9), 1),
                 round(float(np.percentile(latencies, 50)), 1),
                 round(float(np.percentile(latencies, 99)), 1),
                 round(float(latencies.max()), 1))


def database_bytes(url: str, path: Path | None) -> int:
    database = Database(url)
    db = database.connection()
    try:
        if path is not None:
            db.query("PRAGMA wal_checkpoint(TRUNCATE)")
            return path.stat().st_size
        return int(db.scalar("SELECT pg_total_relation_size('alerts') + "
                             "pg_total_relation_size('devices')"))
    finally:
        database.close()


def bench_database(kind: str, args: argparse.Namespace, folder: Path) -> tuple[list[Phase],
                                                                               float]:
    postgres = Postgres().start() if kind == "postgresql" else None
    path = None if postgres else folder / f"{kind}.db"
    url = postgres.url if postgres else f"sqlite:///{path}"
    broker = Broker(persistence=True, extra=BROKER_SETTINGS).start()
    environment = {**os.environ, "EDGE_CONFIG": os.devnull, "EDGE_CENTRAL__PORT":
                   str(broker.port), "EDGE_CENTRAL__DATABASE": url,
                   "EDGE_CENTRAL__STATE_DIR": str(folder / kind),
                   "EDGE_CENTRAL__LISTEN_PORT": "0"}
    collector = subprocess.Popen([sys.executable, "-m", "edge.cli", "central", "run",
                                  "--client-id", "bench-collector"], env=environment)
    Database(url).migrate()
    empty = database_bytes(url, path)
    visibility = Visibility(url)
    fleet = None
    try:
        began = time.time()
        fleet = Fleet(broker.port, args.devices)
        print(f"[{kind}] {args.devices} devices connected in {time.time() - began:.1f} s",
              file=sys.stderr)
        time.sleep(2.0)
        realistic = args.devices * ALERTS_PER_DEVICE_HOUR / 3600
        phases = [run_phase("realistic", kind, fleet, visibility, realistic, args.seconds, None),
                  run_phase("100x", kind, fleet, visibility, realistic * 100, args.seconds,
                            None),
                  run_phase("burst", kind, fleet, visibility, 0.0, None, args.burst)]
        for phase in phases:
            print(f"[{kind}] {phase}", file=sys.stderr)
        stored = len(visibility.seen)
        size = database_bytes(url, path) - empty
        return phases, size / max(stored, 1) * 1e6
    finally:
        if fleet is not None:
            fleet.close()
        visibility.close()
        collector.send_signal(signal.SIGTERM)
        collector.wait(30)
        broker.close()
        if postgres is not None:
            postgres.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the "
                        "realistic and 100x phases")
    parser.add_argument("--burst", type=int, default=20000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    random.seed(7)
    results: list[Phase] = []
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edge-bench-central-") as folder:
        for kind in args.databases.split(","):
            phases, per_million = bench_database(kind, args, Path(folder))
            results += phases
            sizes[kind] = per_million
    realistic = args.devices * ALERTS_PER_DEVICE_HOUR / 3600
    print(f"\n{args.devices} devices x {ALERTS_PER_DEVICE_HOUR} alerts/h = {realistic:.2f} "
          "alerts/s realistic")
    print(f"{'database':10} {'phase':9} {'alerts':>7} {'offered/s':>9} {'stored':>7} "
          f"{'ingest/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for r in results:
        print(f"{r.database:10} {r.phase:9} {r.alerts:7d} {r.offered_per_s:9.1f} {r.stored:7d} "
              f"{r.ingest_per_s:9.1f} {r.p50_ms:7.1f} {r.p99_ms:7.1f} {r.max_ms:7.1f}")
    for kind, per_million in sizes.items():
        burst = next(r for r in results if r.database == kind and r.phase == "burst")
        print(f"{kind}: {per_million / 1e6:.0f} MB per million alerts; burst ingest "
              f"{burst.ingest_per_s:.0f} alerts/s = {burst.ingest_per_s / realistic:.0f}x the "
              "realistic rate")
    if args.json:
        args.json.write_text(json.dumps({"devices": args.devices, "phases": [
            asdict(r) for r in results], "bytes_per_million": sizes}, indent=2))


if __name__ == "__main__":
    main()
