"""Helpers for the collector's tests: databases of both kinds, collectors, alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from edge.central.collector import Collector
from edge.central.database import Database
from edge.demos.postgres import Postgres
from edge.settings import CentralSettings

HERE = Path(__file__).parent
PERSON = "ab" * 8


def fresh_postgres(server: Postgres) -> str:
    """A new, empty database on the shared test server; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + "/" + name


def central_settings(port: int, folder: Path, **extra: object) -> CentralSettings:
    return CentralSettings(port=port, state_dir=folder, **extra)  # pyright: ignore[reportArgumentType]


def start_collector(port: int, folder: Path, database: Database, client_id: str = "c1",
                    **extra: object) -> Collector:
    collector = Collector(central_settings(port, folder, **extra), database,
                          client_id=client_id).start()
    if not collector.subscribed.wait(10):
        raise RuntimeError("the collector did not subscribe")
    return collector


def alert_payload(number: int, *, site: str = "hq", device: str = "entrance-01",
                  person: str = PERSON, level: object = 3, **changes: object) -> bytes:
    body = {"kind": "risk", "schema_version": 1, "message_id": f"{number:032x}",
            "device": device, "site": site, "person": person,
            "hour_start": f"2026-11-{1 + number // 24:02d}T{number % 24:02d}:00:00Z",
            "hour_end": f"2026-11-{1 + number // 24:02d}T{number % 24:02d}:59:59Z",
            "level": level, "label": "Medium risk", "anomaly": True, **changes}
    return json.dumps(body).encode()


def stored_ids(database: Database) -> list[str]:
    return [row[0] for row in database.connection().query("SELECT message_id FROM alerts")]


def start_device(state: Path, port: int, *args: str) -> subprocess.Popen[str]:
    """The real device publishing path (outbox, publisher) in its own process."""
    return subprocess.Popen([sys.executable, str(HERE / "device_process.py"), str(state),
                             "--port", str(port), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def sent_ids(device: subprocess.Popen[str], timeout: float = 60) -> set[str]:
    """Wait for the device to drain its outbox; the alerts it committed and had acknowledged."""
    out, err = device.communicate(timeout=timeout)
    assert device.returncode == 0 and "drained" in out, err
    return {line for line in out.split() if len(line) == 32}


def central_process(port: int, folder: Path, url: str, client_id: str,
                    listen_port: int = 0, **env: str) -> subprocess.Popen[str]:
    """`edge central run` as systemd would start it."""
    environment = {**os.environ, "EDGE_CENTRAL__PORT": str(port),
                   "EDGE_CENTRAL__STATE_DIR": str(folder), "EDGE_CENTRAL__DATABASE": url,
                   "EDGE_CENTRAL__LISTEN_PORT": str(listen_port), "EDGE_CONFIG": os.devnull,
                   **env}
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "--log-level", "INFO",
                             "central", "run", "--client-id", client_id],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
