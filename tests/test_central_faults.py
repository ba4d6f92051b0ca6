"""The collector's fault tests: a real mosquitto with persistence on, real devices (the
outbox and publisher in their own processes), real SQLite and PostgreSQL.

Each prints its sent/stored figures (`-s` shows them; the closing note quotes them).
"""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from central_support import (
    PERSON,
    alert_payload,
    central_process,
    fresh_postgres,
    sent_ids,
    start_collector,
    start_device,
    stored_ids,
)
from paho.mqtt.enums import CallbackAPIVersion

from edge.central.alerts import AlertView, watch_alerts
from edge.central.database import Database
from edge.demos.broker import Broker, wait_until
from edge.demos.postgres import Postgres

pytestmark = pytest.mark.slow


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker(persistence=True).start()
    yield running
    running.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'central.db'}")
    yield database
    database.close()


def report(case: str, sent: int, stored: int) -> None:
    print(f"\n[fault] {case}: sent {sent}, stored {stored}")


def test_collector_down_while_devices_publish(broker: Broker, tmp_path: Path,
                                              sqlite_db: Database) -> None:
    """The persistent session holds every alert for the collector; the old clean-session
    view (`edge alerts`, the negative control) sees none of them."""
    start_collector(broker.port, tmp_path, sqlite_db).stop()  # the session exists, then down
    sent: set[str] = set()
    for number in range(3):
        sent |= sent_ids(start_device(tmp_path / f"device-{number}", broker.port, "--submit",
                                      "20", "--device", f"entrance-{number:02d}"))
    view = watch_alerts("127.0.0.1", broker.port, "edge", timeout=1.0, out=io.StringIO())
    assert len(view.seen) == 0  # what `edge alerts` alone would have shown
    collector = start_collector(broker.port, tmp_path, sqlite_db)
    assert wait_until(lambda: set(stored_ids(sqlite_db)) == sent, 20), len(stored_ids(sqlite_db))
    collector.stop()
    report("collector down while 3 devices publish", len(sent), len(stored_ids(sqlite_db)))
    assert len(sent) == 60 and len(stored_ids(sqlite_db)) == 60


def test_broker_restarted_between_publish_and_collector_start(broker: Broker, tmp_path: Path,
                                                              sqlite_db: Database) -> None:
    start_collector(broker.port, tmp_path, sqlite_db).stop()
    sent = sent_ids(start_device(tmp_path / "device", broker.port, "--submit", "40"))
    broker.stop()  # SIGTERM: mosquitto writes its persistence file
    broker.start()
    collector = start_collector(broker.port, tmp_path, sqlite_db)
    assert wait_until(lambda: set(stored_ids(sqlite_db)) == sent, 20), len(stored_ids(sqlite_db))
    collector.stop()
    report("broker restarted before the collector started", len(sent),
           len(stored_ids(sqlite_db)))
    assert len(stored_ids(sqlite_db)) == 40


def _subscribed(broker: Broker, client_id: str) -> bool:
    return f"{client_id} 1 $share/edge-central/edge/+/+/risk/+" in broker.log.read_text(
        errors="replace")


def test_two_replicas_share_the_alerts_and_survive_a_kill(broker: Broker, tmp_path: Path,
                                                          postgres_server: Postgres) -> None:
    """Two `edge central run` processes on one shared subscription and one PostgreSQL:
    every alert stored once; one replica SIGKILLed mid-stream and restarted as systemd
    would: none lost."""
    url = fresh_postgres(postgres_server)
    replicas = {name: central_process(broker.port, tmp_path / name, url, name)
                for name in ("replica-a", "replica-b")}
    assert wait_until(lambda: all(_subscribed(broker, n) for n in replicas), 20), \
        broker.log.read_text()[-2000:]
    device = start_device(tmp_path / "device", broker.port, "--submit", "150", "--interval",
                          "0.01")
    database = Database(url)
    assert wait_until(lambda: len(stored_ids(database)) >= 30, 30)
    replicas["replica-a"].send_signal(signal.SIGKILL)
    replicas["replica-a"].wait(10)
    killed_at = len(stored_ids(database))
    sent = sent_ids(device)
    replicas["replica-a"] = central_process(broker.port, tmp_path / "replica-a", url,
                                            "replica-a")
    assert wait_until(lambda: set(stored_ids(database)) == sent, 30), \
        f"{len(stored_ids(database))} of {len(sent)}"
    by_replica = dict(database.connection().query(
        "SELECT received_by, count(*) FROM alerts GROUP BY received_by"))
    for process in replicas.values():
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, process.communicate()[1][-2000:]
    database.close()
    report(f"2 replicas, one SIGKILLed after {killed_at} stored (by replica: {by_replica})",
           len(sent), len(stored_ids(Database(url))))
    assert len(sent) == 150 and set(by_replica) == {"replica-a", "replica-b"}
    assert sum(by_replica.values()) == 150


def test_bad_messages_are_counted_and_never_stored(broker: Broker, tmp_path: Path,
                                                   sqlite_db: Database) -> None:
    collector = start_collector(broker.port, tmp_path, sqlite_db, max_message_bytes=2048)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    topic = f"edge/hq/entrance-01/risk/{PERSON}"
    bad = [(topic, b"{not json"), (topic, b"\x00" * 4096), (topic, alert_payload(1, level="3")),
           (topic, alert_payload(2, device="lobby")), (topic, b'{"kind": "stats"}'),
           ("edge/hq/entrance-01/status", b"rebooting"), ("edge/hq/entrance-01/stats", b"[1]")]
    for bad_topic, payload in bad:
        sender.publish(bad_topic, payload, qos=1).wait_for_publish(5)
    sender.publish(topic, alert_payload(3), qos=1).wait_for_publish(5)  # the positive control
    assert wait_until(lambda: collector.counts.alerts_stored == 1, 10)
    assert wait_until(lambda: sum(collector.counts.rejected.values()) == len(bad), 5)
    assert dict(collector.counts.rejected) == {"malformed": 2, "oversized": 1,
                                               "wrong_type": 3, "mismatch": 1}
    assert collector._writer is not None and collector._writer.is_alive()
    assert stored_ids(sqlite_db) == [f"{3:032x}"]
    collector.stop()
    sender.disconnect()
    sender.loop_stop()
    report("7 malformed, oversized or wrongly typed + 1 valid", 8, len(stored_ids(sqlite_db)))


def test_database_down_then_back_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    """PostgreSQL stopped under a running collector: batches stay unacknowledged and are
    retried; once it is back every alert is stored."""
    server = Postgres().start()
    try:
        database = Database(server.url)
        collector = start_collector(broker.port, tmp_path, database)
        server.stop()
        sent = sent_ids(start_device(tmp_path / "device", broker.port, "--submit", "30"))
        assert wait_until(lambda: collector.counts.db_failures > 0, 10)
        assert collector.storage.problem is not None
        server.start_again()
        assert wait_until(lambda: collector.counts.alerts_stored == 30, 60), \
            collector.counts
        assert set(stored_ids(database)) == sent and collector.storage.problem is None
        collector.stop()
        report("PostgreSQL stopped while 30 alerts arrived", len(sent),
               len(stored_ids(database)))
        database.close()
    finally:
        server.close()


def test_edge_alerts_shows_availability_and_json(broker: Broker, tmp_path: Path) -> None:
    """The live view: `online`/`offline` with the reason; --json one object per line."""
    import json

    out = io.StringIO()
    stop = threading.Event()
    view = AlertView(out=out, as_json=True)
    watcher = threading.Thread(target=watch_alerts, args=("127.0.0.1", broker.port, "edge"),
                               kwargs={"stop": stop, "view": view, "as_json": True})
    watcher.start()
    time.sleep(0.5)
    sent = sent_ids(start_device(tmp_path / "device", broker.port, "--submit", "2"))
    assert wait_until(lambda: len(view.seen) == 2, 10)
    time.sleep(0.3)
    stop.set()
    watcher.join(5)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["message_id"] for r in records if r.get("kind") == "risk"} == sent
    assert [(r["status"], r["reason"]) for r in records if r.get("kind") == "status"][-1] == \
        ("offline", "stopped")
