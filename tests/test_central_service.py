"""`edge central run` as an operator runs it: a broker that wants a password, the console
over HTTPS, secrets that never reach the log, a clean stop on SIGTERM."""

from __future__ import annotations

import io
import signal
import ssl
import threading
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from central_support import alert_payload, central_process, stored_ids
from mqtt_support import make_pki
from paho.mqtt.enums import CallbackAPIVersion

from edge.central.alerts import watch_alerts
from edge.central.database import Database
from edge.core.errors import EdgeError
from edge.demos.broker import Broker, free_port, wait_until
from edge.demos.postgres import Postgres

pytestmark = pytest.mark.slow
BROKER_PASSWORD = "broker-secret-4711"
DATABASE_PASSWORD = "db-secret-0815"


def test_a_broker_password_for_the_collector_and_for_edge_alerts(tmp_path: Path) -> None:
    broker = Broker(passwords={"central": BROKER_PASSWORD,
                              "device": BROKER_PASSWORD}).start()
    try:
        with pytest.raises(EdgeError, match="refused the connection"):
            watch_alerts("127.0.0.1", broker.port, "edge", username="central",
                         password="wrong", timeout=5, out=io.StringIO())
        url = f"sqlite:///{tmp_path / 'central.db'}"
        collector = central_process(broker.port, tmp_path / "central", url, "central-1",
                                    EDGE_CENTRAL__USERNAME="central",
                                    EDGE_CENTRAL__PASSWORD=BROKER_PASSWORD)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        device.username_pw_set("device", BROKER_PASSWORD)
        device.connect("127.0.0.1", broker.port)
        device.loop_start()
        database = Database(url)
        assert wait_until(lambda: database.path is not None and database.path.exists(), 20)
        view_out = io.StringIO()
        stop = threading.Event()
        viewer = threading.Thread(target=watch_alerts, args=("127.0.0.1", broker.port, "edge"),
                                  kwargs={"username": "central", "password": BROKER_PASSWORD,
                                          "stop": stop, "out": view_out, "count": 1})
        viewer.start()
        wait_until(lambda: "received" in view_out.getvalue(), 5)  # its header: connected
        # the collector subscribes once connected: publish until the first alert is stored
        assert wait_until(lambda: (device.publish(
            "edge/hq/entrance-01/risk/" + "ab" * 8, alert_payload(1), qos=1), stored_ids(
                database))[1] == [f"{1:032x}"], 20, step=0.5)
        viewer.join(10)
        stop.set()
        assert "ab" * 8 in view_out.getvalue() and "1 alerts" in view_out.getvalue()
        device.disconnect()
        device.loop_stop()
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(20) == 0
        log = collector.stderr.read() if collector.stderr else ""
        assert "central_connected" in log and BROKER_PASSWORD not in log
        database.close()
    finally:
        broker.close()


def test_the_console_over_https_and_no_secret_in_the_log(tmp_path: Path,
                                                         postgres_server: Postgres) -> None:
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    broker = Broker().start()
    try:
        # a PostgreSQL URL with a password (trust authentication ignores it)
        url = postgres_server.url.replace("edge@", f"edge:{DATABASE_PASSWORD}@")
        process = central_process(broker.port, tmp_path / "central", url, "central-tls",
                                  listen_port=port,
                                  EDGE_CENTRAL__HTTPS_CERT_FILE=str(pki["server.pem"]),
                                  EDGE_CENTRAL__HTTPS_KEY_FILE=str(pki["server.key"]))
        context = ssl.create_default_context(cafile=str(pki["ca.pem"]))

        def login_page() -> int:
            try:
                with urllib.request.urlopen(f"https://localhost:{port}/login",
                                            context=context, timeout=2) as answer:
                    return int(answer.status)
            except OSError:
                return 0

        assert wait_until(lambda: login_page() == 200, 30, step=0.3)
        with pytest.raises(OSError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://localhost:{port}/login", timeout=2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        log = process.stderr.read() if process.stderr else ""
        assert "console_listening" in log and f"https://127.0.0.1:{port}/" in log
        assert DATABASE_PASSWORD not in log and "postgresql://127.0.0.1" in log
    finally:
        broker.close()


def test_an_unusable_sqlite_folder_is_one_line_at_once(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    process = central_process(free_port(), blocker / "central", f"sqlite:///{blocker}/c.db",
                              "central-bad")
    assert process.wait(30) == 2
    err = process.stderr.read() if process.stderr else ""
    assert "error: cannot open the database" in err and "Traceback" not in err
