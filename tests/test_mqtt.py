"""The publisher against a real mosquitto: faults, will, ACL refusal, TLS, privacy.

Each fault test prints "delivered N / sent M" (pytest -s shows it); the closing note of
the MQTT issue quotes them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from mqtt_support import Subscriber, make_pki
from pydantic import ValidationError

from edge.core.errors import ConfigError
from edge.core.records import RiskGrade
from edge.demos.broker import Broker, wait_until
from edge.publish.client import Publisher
from edge.publish.outbox import alerts_for, queue_alerts
from edge.publish.payload import RiskAlert
from edge.publish.pseudonym import pseudonym
from edge.secrets import device_key
from edge.settings import Settings, load_settings
from edge.store import Store

HERE = Path(__file__).resolve().parent
PERSON = "E-1001"
ALLOWED_FIELDS = {"kind", "schema_version", "message_id", "device", "site", "person",
                  "hour_start", "hour_end", "level", "label", "anomaly"}
START = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


def grades(count: int, level: int = 3, first_hour: int = 0) -> list[RiskGrade]:
    return [RiskGrade(PERSON, START + timedelta(hours=first_hour + i), "graded", level,
                      "Medium risk", 2.4, True, ("sad", "angry", "negative"), 60)
            for i in range(count)]


def assert_private(subscriber: Subscriber) -> None:
    """Nothing but the allowed fields; no vector, image, template or enrolled id."""
    for topic, payload, _retain in subscriber.messages:
        assert PERSON.encode() not in payload and PERSON not in topic
        if payload.startswith(b"{"):
            body = json.loads(payload)
            if body["kind"] == "risk":
                assert set(body) == ALLOWED_FIELDS
            assert not any(isinstance(v, (list, dict)) for v in body.values())
        else:
            assert payload in (b"online", b"offline")  # availability: nothing else


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker().start()
    yield running
    running.close()


def device_settings(port: int, state: Path, **mqtt: object) -> Settings:
    return Settings(device={"id": "entrance-01", "site": "hq"},
                    mqtt={"port": port, "stats_interval_s": 3600, **mqtt},
                    storage={"state_dir": state})


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    with Store(folder) as store:
        store.enroll(PERSON, "C-1", date(2026, 1, 1), [])
    return folder


def submit(settings: Settings, state: Path, count: int) -> set[str]:
    with Store(state) as store:
        before = {m for m, *_ in store.outbox_messages()}
        queue_alerts(store, grades(count), settings, device_key(state), START)
        return {m for m, *_ in store.outbox_messages()} - before


def outbox_size(state: Path) -> int:
    with Store(state) as store:
        return sum(store.outbox_counts().values())


def report(name: str, received: set[str], sent: set[str]) -> None:
    print(f"\n{name}: delivered {len(received & sent)} / sent {len(sent)}")


def test_broker_down_when_the_device_starts(broker: Broker, state: Path) -> None:
    subscriber = Subscriber(broker.port, ["edge/#"]).start()
    time.sleep(1.2)          # the broker saves the subscriber's session (autosave 1 s)
    broker.stop()            # down before the device starts
    settings = device_settings(broker.port, state)
    publisher = Publisher(settings, state).start()
    sent = submit(settings, state, 20)
    publisher.wake()
    time.sleep(1.5)
    assert not publisher.connected.is_set() and outbox_size(state) == 20
    broker.start()
    assert wait_until(lambda: subscriber.message_ids() >= sent, 30)
    assert wait_until(lambda: outbox_size(state) == 0, 10)
    report("broker down at start", subscriber.message_ids(), sent)
    publisher.stop()
    assert_private(subscriber)
    subscriber.stop()


def start_device(state: Path, port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE / "device_process.py"), str(state),
                             "--port", str(port), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_broker_killed_mid_stream(broker: Broker, state: Path) -> None:
    subscriber = Subscriber(broker.port, ["edge/#"]).start()
    time.sleep(1.2)
    device = start_device(state, broker.port, "--submit", "60", "--interval", "0.03")
    time.sleep(0.8)
    broker.kill()            # SIGKILL: no goodbye, in-flight alerts unacknowledged
    time.sleep(1.0)
    broker.start()
    out, err = device.communicate(timeout=60)
    assert device.returncode == 0, err
    sent = {line for line in out.split() if line != "drained"}
    assert len(sent) == 60 and out.strip().endswith("drained")
    assert wait_until(lambda: subscriber.message_ids() >= sent, 20)
    report("broker killed mid-stream", subscriber.message_ids(), sent)
    assert_private(subscriber)
    subscriber.stop()


def test_device_killed_with_alerts_pending(broker: Broker, state: Path) -> None:
    subscriber = Subscriber(broker.port, ["edge/#"]).start()
    time.sleep(1.2)
    broker.stop()            # nothing can leave: every alert stays pending
    device = start_device(state, broker.port, "--submit", "25", "--stay")
    sent: set[str] = set()
    while len(sent) < 25:
        sent.add(device.stdout.readline().strip())
    device.send_signal(signal.SIGKILL)
    device.wait(10)
    assert outbox_size(state) == 25
    broker.start()
    again = start_device(state, broker.port)  # restart: resend what the outbox holds
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and "drained" in out, err
    assert wait_until(lambda: subscriber.message_ids() >= sent, 20)
    report("device SIGKILLed with alerts pending", subscriber.message_ids(), sent)
    subscriber.stop()


def test_availability_online_offline_with_the_reason_beside_it(broker: Broker,
                                                               state: Path) -> None:
    """Home Assistant's convention: only `online`/`offline` on the retained status; why is
    in the MQTT 5 user property `reason` (the will says `connection lost`)."""
    subscriber = Subscriber(broker.port, ["edge/hq/entrance-01/status"]).start()
    device = start_device(state, broker.port, "--stay")
    assert wait_until(lambda: (b"online", "running") in subscriber.status_reasons(), 15)
    device.send_signal(signal.SIGKILL)
    device.wait(10)
    assert wait_until(lambda: subscriber.status_reasons()[-1:] == [(b"offline",
                                                                    "connection lost")], 15)
    device = start_device(state, broker.port, "--stay")
    assert wait_until(lambda: subscriber.statuses()[-1:] == [b"online"], 15)
    device.send_signal(signal.SIGTERM)
    assert device.wait(15) == 0
    assert wait_until(lambda: subscriber.status_reasons()[-1:] == [(b"offline", "stopped")], 15)
    time.sleep(0.5)
    assert subscriber.status_reasons()[-1] == (b"offline", "stopped")
    assert set(subscriber.statuses()) == {b"online", b"offline"}
    subscriber.stop()


ACL_DENYING_RISK = """
topic read edge/#
topic write edge/hq/entrance-01/status
topic write edge/hq/entrance-01/stats
"""


def test_acl_refusal_is_logged_and_the_alert_kept(state: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    broker = Broker(acl=ACL_DENYING_RISK).start()
    try:
        subscriber = Subscriber(broker.port, ["edge/#"]).start()
        from edge.core.logs import configure_logging

        configure_logging("entrance-01", "INFO", json=True)
        settings = device_settings(broker.port, state)
        publisher = Publisher(settings, state).start()
        sent = submit(settings, state, 3)
        publisher.wake()
        assert wait_until(lambda: publisher.refused >= 3, 15)
        publisher.stop()
        with Store(state) as store:
            queued = store.outbox_messages()
        assert {m for m, *_ in queued} == sent
        assert all(s == "refused" and "Not authorized" in (e or "") for _m, s, _a, e in queued)
        logs = [json.loads(line) for line in capsys.readouterr().err.splitlines()
                if line.startswith("{")]
        refusals = [line for line in logs if line["event"] == "alert_refused_by_broker"]
        assert len(refusals) == 3 and "Not authorized" in refusals[0]["reason"]
        assert subscriber.message_ids() == set()
        assert b"online" in subscriber.statuses()  # the permitted topic still works
        subscriber.stop()
    finally:
        broker.close()


def test_mqtt_311_cannot_tell_a_refusal(state: Path) -> None:
    """Why MQTT 5 is the default: with 3.1.1 mosquitto acknowledges a denied publish."""
    broker = Broker(acl=ACL_DENYING_RISK).start()
    try:
        settings = device_settings(broker.port, state, protocol="3.1.1")
        publisher = Publisher(settings, state).start()
        submit(settings, state, 2)
        publisher.wake()
        assert wait_until(lambda: publisher.delivered >= 2, 15)
        assert publisher.refused == 0
        publisher.stop()
    finally:
        broker.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_broker(pki: dict[str, Path]) -> Broker:
    return Broker(tls={"cafile": pki["ca.pem"], "certfile": pki["server.pem"],
                       "keyfile": pki["server.key"]}).start()


def test_tls_with_client_certificates(pki: dict[str, Path], state: Path) -> None:
    broker = tls_broker(pki)
    try:
        subscriber = Subscriber(broker.port, ["edge/#"], host="localhost", tls={
            "ca_certs": str(pki["ca.pem"]), "certfile": str(pki["client.pem"]),
            "keyfile": str(pki["client.key"])}).start()
        settings = device_settings(broker.port, state, host="localhost",
                                   ca_file=pki["ca.pem"], cert_file=pki["client.pem"],
                                   key_file=pki["client.key"])
        publisher = Publisher(settings, state).start()
        sent = submit(settings, state, 5)
        publisher.wake()
        assert wait_until(lambda: subscriber.message_ids() >= sent, 20)
        report("TLS with client certificate", subscriber.message_ids(), sent)
        publisher.stop()
        subscriber.stop()
    finally:
        broker.close()


@pytest.mark.parametrize("case", ["unknown client certificate", "host name mismatch"])
def test_tls_refuses_what_it_cannot_verify(pki: dict[str, Path], state: Path,
                                           case: str) -> None:
    broker = tls_broker(pki)
    try:
        if case == "unknown client certificate":
            settings = device_settings(broker.port, state, host="localhost",
                                       ca_file=pki["ca.pem"], cert_file=pki["stranger.pem"],
                                       key_file=pki["stranger.key"])
        else:  # the server certificate names localhost, not 127.0.0.1
            settings = device_settings(broker.port, state, host="127.0.0.1",
                                       ca_file=pki["ca.pem"], cert_file=pki["client.pem"],
                                       key_file=pki["client.key"])
        publisher = Publisher(settings, state).start()
        submit(settings, state, 2)
        publisher.wake()
        time.sleep(2.5)
        assert not publisher.connected.is_set()
        assert publisher.delivered == 0 and outbox_size(state) == 2  # kept, not lost
        assert publisher.unreachable  # and said so (`mqtt_unreachable`), not silent
        publisher.stop()
    finally:
        broker.close()


@pytest.mark.parametrize(("text", "expected"), [
    ("[mqtt]\nport = 0\n", "mqtt.port = 0: Input should be greater than or equal to 1"),
    ("[mqtt]\nport = 65536\n", "mqtt.port = 65536: Input should be less than or equal to 65535"),
    ('[mqtt]\nca_file = "/nonexistent/ca.pem"\n', "mqtt.ca_file = '/nonexistent/ca.pem': file "
                                                  "'/nonexistent/ca.pem' not found"),
    ('[mqtt]\nprotocol = "3"\n', "mqtt.protocol = '3': Input should be '5' or '3.1.1'"),
    ('[mqtt]\ntopic_prefix = "a/#"\n', "mqtt.topic_prefix = 'a/#': String should match"),
])
def test_bad_mqtt_settings_are_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}: {expected}" or (
        len(str(caught.value).splitlines()) == 1 and expected in str(caught.value))


def test_client_certificate_without_key_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("x")
    path = tmp_path / "edge.toml"
    path.write_text(f'[mqtt]\nca_file = "{pem}"\ncert_file = "{pem}"\n')
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_settings(path)


def test_payload_schema_admits_nothing_else() -> None:
    grade = grades(1)[0]
    alert = RiskAlert.from_grade(grade, device="d", site="s", pseudonym="0" * 16,
                                 message_id="f" * 32)
    assert set(json.loads(alert.encode())) == ALLOWED_FIELDS
    for extra in ({"vector": [0.1] * 10}, {"image": "AAAA"}, {"template": [0.0] * 128},
                  {"person_id": PERSON}):
        with pytest.raises(ValidationError):
            RiskAlert(**alert.model_dump(), **extra)
    with pytest.raises(ValidationError):  # the enrolled id is not a pseudonym
        RiskAlert(**{**alert.model_dump(), "person": PERSON})


def test_pseudonyms_are_keyed() -> None:
    assert pseudonym(PERSON, b"k" * 32) == pseudonym(PERSON, b"k" * 32)
    assert pseudonym(PERSON, b"k" * 32) != pseudonym(PERSON, b"j" * 32)
    assert pseudonym(PERSON, b"k" * 32) != pseudonym("E-1002", b"k" * 32)


def test_only_graded_hours_at_the_minimum_level_are_queued(state: Path) -> None:
    settings = device_settings(1883, state)
    ungraded = RiskGrade(PERSON, START, "insufficient_history", 0, "Insufficient history",
                         None, False, (), 3)
    calm = RiskGrade(PERSON, START, "graded", 0, "No risk", 1.0, False, (), 40)
    with Store(state) as store:
        assert queue_alerts(store, [ungraded, calm, *grades(1)], settings, b"k" * 32,
                            START) == (1, 0)
        every = settings.model_copy(update={"mqtt": settings.mqtt.model_copy(
            update={"min_level": 0})})
        assert queue_alerts(store, [ungraded, calm], every, b"k" * 32, START) == (1, 0)


def test_outbox_bounds_drop_oldest_and_say_so(state: Path) -> None:
    settings = device_settings(1883, state, outbox_max_messages=10)
    with Store(state) as store:
        assert queue_alerts(store, grades(8), settings, b"k" * 32, START) == (8, 0)
        assert queue_alerts(store, grades(5, first_hour=8), settings, b"k" * 32,
                            START) == (5, 3)
        assert sum(store.outbox_counts().values()) == 10


def test_a_clock_jump_never_drops_an_unsent_alert(state: Path) -> None:
    """The wall clock jumps a year ahead (NTP after a box booted without an RTC): the
    alerts waiting in the outbox stay; only the count bound ever drops one."""
    settings = device_settings(1883, state, outbox_max_messages=50)
    with Store(state) as store:
        queue_alerts(store, grades(20), settings, b"k" * 32, START)
        later = START + timedelta(days=365)
        assert queue_alerts(store, grades(1, first_hour=9000), settings, b"k" * 32,
                            later) == (1, 0)
        assert sum(store.outbox_counts().values()) == 21


def test_an_hour_is_alerted_under_one_message_id(state: Path) -> None:
    """The alert's id comes from the device, the person and the hour: a re-graded hour
    (after a crash, say) is the same alert, queued once; another hour is another alert."""
    settings = device_settings(1883, state)
    with Store(state) as store:
        (first,) = alerts_for(grades(1), settings, b"k" * 32, START)
        (again,) = alerts_for(grades(1), settings, b"k" * 32, START + timedelta(hours=5))
        (other,) = alerts_for(grades(1, first_hour=1), settings, b"k" * 32, START)
        assert first.message_id == again.message_id != other.message_id
        (elsewhere,) = alerts_for(grades(1), device_settings(1883, state, client_id="x"),
                                  b"j" * 32, START)
        assert elsewhere.message_id != first.message_id  # another device key: unlinkable
        assert PERSON not in first.message_id
        for message in (first, again, other):
            store.enqueue([message], max_messages=100)
        assert sum(store.outbox_counts().values()) == 2


def test_stats_topic(broker: Broker, state: Path) -> None:
    subscriber = Subscriber(broker.port, ["edge/+/+/stats"]).start()
    publisher = Publisher(device_settings(broker.port, state), state).start()
    assert publisher.connected.wait(10)
    publisher.update_metrics(frames_per_s=23.5, faces_per_h=812.0, inference_ms=31.0)
    publisher.publish_stats_now()
    assert wait_until(lambda: subscriber.payloads("stats"), 10)
    stats = subscriber.payloads("stats")[0]
    assert (stats["frames_per_s"], stats["outbox_depth"], stats["alerts_dropped"]) == (
        23.5, 0, 0)
    publisher.stop()
    subscriber.stop()


def test_central_alert_view_deduplicates(broker: Broker, state: Path) -> None:
    import io
    import threading

    from edge.central.alerts import HEADER, watch_alerts

    out = io.StringIO()
    result: list = []
    viewer = threading.Thread(target=lambda: result.append(
        watch_alerts("127.0.0.1", broker.port, "edge", count=5, timeout=30, out=out)))
    viewer.start()
    time.sleep(1.0)
    settings = device_settings(broker.port, state)
    publisher = Publisher(settings, state).start()
    submit(settings, state, 3)
    publisher.wake()
    assert wait_until(lambda: outbox_size(state) == 0, 15)
    topic = "edge/hq/entrance-01/risk/" + "ab" * 8
    resent, last = (RiskAlert.from_grade(g, device="entrance-01", site="hq",
                                         pseudonym="ab" * 8, message_id=uuid.uuid4().hex)
                    for g in grades(2))
    # the fourth alert twice (a resend after a lost PUBACK), then a fifth: QoS 1 from one
    # client keeps the order, so the copy arrives before the viewer has seen five
    for alert in (resent, resent, last):
        publisher.client.publish(topic, alert.encode(), qos=1)
    viewer.join(35)
    view = result[0]
    assert (len(view.seen), view.duplicates, view.malformed) == (5, 1, 0)
    rows = [line for line in out.getvalue().splitlines()
            if line != HEADER and "Medium risk" in line]
    assert len(rows) == 5  # each alert printed once
    assert "entrance-01" in rows[0] and PERSON not in out.getvalue()
    publisher.stop()


@pytest.mark.parametrize("who", ["device", "edge alerts"])
def test_a_file_that_is_not_pem_is_one_line_naming_the_setting(
        tmp_path: Path, who: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Device and central viewer share one TLS set-up, and so its one-line error."""
    from edge.cli import main
    from edge.publish.client import make_client

    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    if who == "device":
        settings = Settings.model_validate({"mqtt": {"ca_file": garbage}})
        with pytest.raises(ConfigError, match="cannot use the TLS files") as caught:
            make_client(settings, "edge-test")
        assert "mqtt.ca_file" in str(caught.value)
        return
    assert main(["alerts", "--broker", "127.0.0.1", "--ca-file", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert "error: cannot use the TLS files" in err and "--ca-file" in err
    assert "Traceback" not in err


def test_the_publisher_survives_a_full_disk_and_recovers(broker: Broker,
                                                         tmp_path: Path) -> None:
    """On a full disk the publisher cannot open or write its store. Its loop used to die
    of the first such error for good while the service went on feeding the watchdog; now
    it retries with backoff, stays alive, and drains the outbox once space is back."""
    from disk_support import small_disk

    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        state = disk.path / "state"
        with Store(state) as store:
            store.enroll(PERSON, "C-1", date(2026, 1, 1), [])
        settings = device_settings(broker.port, state)
        sent = submit(settings, state, 5)
        subscriber = Subscriber(broker.port, ["edge/+/+/risk/#"]).start()
        disk.fill()
        publisher = Publisher(settings, state).start()
        try:
            assert wait_until(lambda: publisher.restarts >= 2, 15)  # it did hit the disk
            assert publisher.alive and not subscriber.message_ids()
            disk.free()
            assert wait_until(lambda: outbox_size(state) == 0, 40)
            assert wait_until(lambda: sent <= subscriber.message_ids(), 10)
            assert publisher.alive
        finally:
            publisher.stop()
            subscriber.stop()
