"""The collector's database, message checks and accounts, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from central_support import (
    PERSON,
    alert_payload,
)

from edge.central.accounts import add_user, list_users, load_user, remove_user, verify
from edge.central.database import MIGRATIONS, Database, DatabaseError, SchemaTooNew
from edge.central.ledger import act, record
from edge.central.messages import (
    AlertMessage,
    AvailabilityMessage,
    Incoming,
    Rejection,
    StatsMessage,
    parse,
)
from edge.central.queries import AlertFilter, alert, alerts, devices, timeline
from edge.core.errors import EdgeError
from edge.publish.payload import DeviceStats

RISK_TOPIC = f"edge/hq/entrance-01/risk/{PERSON}"


def incoming(topic: str, payload: bytes, reason: str | None = None) -> Incoming:
    return Incoming(topic, payload, time.time(), reason)


def stats_payload(**changes: object) -> bytes:
    stats = DeviceStats(device="entrance-01", site="hq", at="2026-11-25T10:00:00Z",
                        uptime_s=12.0, frames_per_s=11.5, outbox_depth=2, alerts_dropped=0,
                        alerts_refused=0, temperature_c=51.0, camera_reconnects=1,
                        faults=["camera"])
    return json.dumps({**json.loads(stats.encode()), **changes}).encode()


# --- what arrives ----------------------------------------------------------------------------
def test_a_valid_alert_status_and_stats_are_read() -> None:
    """The positive control for the rejections below."""
    assert isinstance(parse(incoming(RISK_TOPIC, alert_payload(1)), "edge", 4096), AlertMessage)
    status = parse(incoming("edge/hq/entrance-01/status", b"offline", "stopped"), "edge", 4096)
    assert status == AvailabilityMessage("hq", "entrance-01", False, "stopped",
                                         status.received_at)  # type: ignore[union-attr]
    assert isinstance(parse(incoming("edge/hq/entrance-01/stats", stats_payload()), "edge",
                            4096), StatsMessage)


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    (RISK_TOPIC, b"x" * 5000, "oversized"),
    (RISK_TOPIC, b"{not json", "malformed"),
    (RISK_TOPIC, b"\xff\xfe\x00", "malformed"),
    (RISK_TOPIC, alert_payload(1, level="3"), "wrong_type"),       # text, not a number
    (RISK_TOPIC, alert_payload(1, level=11), "wrong_type"),        # out of range
    (RISK_TOPIC, alert_payload(1, vector=[0.1] * 10), "wrong_type"),  # never a vector
    (RISK_TOPIC, stats_payload(), "wrong_type"),                   # stats on a risk topic
    (RISK_TOPIC, b"[]", "wrong_type"),
    (RISK_TOPIC, alert_payload(1, device="lobby-02"), "mismatch"),  # not the topic's device
    (f"edge/hq/entrance-01/risk/{'cd' * 8}", alert_payload(1), "mismatch"),
    ("edge/hq/entrance-01/status", b"stopped", "malformed"),       # availability: 2 words
    ("edge/hq/entrance-01/stats", b'{"kind": "stats"}', "wrong_type"),
    ("edge/hq/risk", b"{}", "unknown_topic"),
    ("other/hq/entrance-01/status", b"online", "unknown_topic"),
])
def test_bad_messages_are_rejected_with_a_reason(topic: str, payload: bytes,
                                                 reason: str) -> None:
    result = parse(incoming(topic, payload), "edge", 4096)
    assert isinstance(result, Rejection) and result.reason == reason, result


# --- the database ----------------------------------------------------------------------------
def test_migrations_run_once_and_a_newer_schema_is_refused(database: Database) -> None:
    assert database.migrate() == len(MIGRATIONS)  # again: nothing to do
    db = database.connection()
    assert db.scalar("SELECT count(*) FROM schema_version") == len(MIGRATIONS)
    with db.transaction():
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    with pytest.raises(SchemaTooNew, match="upgrade edge"):
        database.migrate()


def test_an_alert_sent_twice_is_stored_once(database: Database) -> None:
    db = database.connection()
    first = record(db, [parse(incoming(RISK_TOPIC, alert_payload(n)), "edge", 4096)
                        for n in (1, 2, 1)], "c1")
    again = record(db, [parse(incoming(RISK_TOPIC, alert_payload(2)), "edge", 4096)], "c2")
    assert (first.alerts, first.duplicates, again.alerts, again.duplicates) == (2, 1, 0, 1)
    assert db.scalar("SELECT count(*) FROM alerts") == 2
    assert db.scalar("SELECT received_by FROM alerts WHERE message_id = ?",
                     (f"{2:032x}",)) == "c1"


def test_device_availability_and_stats(database: Database) -> None:
    db = database.connection()
    record(db, [parse(incoming("edge/hq/entrance-01/status", b"online", "running"), "edge",
                      4096),
                parse(incoming("edge/hq/entrance-01/stats", stats_payload()), "edge", 4096)],
           "c1")
    (device,) = devices(db, None)
    assert (device.availability, device.frames_per_s, device.outbox_depth, device.faults,
            device.camera_reconnects) == ("online", 11.5, 2, ["camera"], 1)
    assert device.health(time.time(), 180) == "online"
    assert device.health(time.time() + 200, 180) == "stale"  # stats stopped
    record(db, [parse(incoming("edge/hq/entrance-01/status", b"offline", "connection lost"),
                      "edge", 4096)], "c1")
    (device,) = devices(db, None)
    assert (device.health(time.time(), 180), device.reason) == ("offline", "connection lost")
    assert device.frames_per_s == 11.5  # the last stats stay for the operator to read


def test_acknowledge_and_resolve_leave_an_audit_trail(database: Database) -> None:
    db = database.connection()
    record(db, [parse(incoming(RISK_TOPIC, alert_payload(1)), "edge", 4096)], "c1")
    message_id = f"{1:032x}"
    assert act(db, message_id, "acknowledge", "called the team lead", "alice", 10.0) == \
        "acknowledged"
    assert act(db, message_id, "resolve", "talked, all fine", "bob", 20.0) == "resolved"
    with pytest.raises(EdgeError, match="already resolved"):
        act(db, message_id, "acknowledge", "", "alice", 30.0)
    with pytest.raises(EdgeError, match="no alert"):
        act(db, "f" * 32, "acknowledge", "", "alice", 30.0)
    found = alert(db, message_id, None)
    assert found is not None
    row, actions = found
    assert row.state == "resolved"
    assert [(a.action, a.actor, a.note) for a in actions] == [
        ("acknowledge", "alice", "called the team lead"), ("resolve", "bob", "talked, all fine")]


def test_filters_and_site_restriction(database: Database) -> None:
    db = database.connection()
    record(db, [parse(incoming(f"edge/{site}/{device}/risk/{PERSON}", alert_payload(
        n, site=site, device=device, level=level)), "edge", 4096)
        for n, site, device, level in [(1, "hq", "entrance-01", 2), (2, "hq", "lobby", 5),
                                       (3, "plant", "gate", 4), (30, "hq", "entrance-01", 3)]],
        "c1")
    everything = alerts(db, AlertFilter(), None)
    assert [a.message_id[-2:] for a in everything] == ["1e", "03", "02", "01"]  # newest first
    assert {a.site for a in alerts(db, AlertFilter(), {"plant"})} == {"plant"}
    assert alerts(db, AlertFilter(site="hq"), {"plant"}) == []  # a filter cannot widen
    assert alerts(db, AlertFilter(), set()) == []
    assert [a.level for a in alerts(db, AlertFilter(min_level=4), None)] == [4, 5]
    from datetime import date

    assert len(alerts(db, AlertFilter(day_from=date(2026, 11, 2)), None)) == 1
    assert len(alerts(db, AlertFilter(day_to=date(2026, 11, 1)), None)) == 3
    assert len(alerts(db, AlertFilter(device="entrance-01", state="open"), None)) == 2
    assert alert(db, f"{3:032x}", {"hq"}) is None  # another site's alert does not exist
    assert [a.level for a in timeline(db, PERSON, {"hq"})] == [2, 5, 3]  # oldest first


# --- accounts --------------------------------------------------------------------------------
def test_accounts_hash_passwords_and_hold_roles_per_site(database: Database) -> None:
    db = database.connection()
    assert add_user(db, "alice", "responder", "hq", "a long password")
    assert not add_user(db, "alice", "viewer", "plant", None)  # a grant at another site
    stored = db.scalar("SELECT password_hash FROM users WHERE name = 'alice'")
    assert stored.startswith("$argon2id$") and "a long password" not in stored
    user = verify(db, "alice", "a long password")
    assert user is not None and user.grants == {"hq": "responder", "plant": "viewer"}
    assert user.may("hq", "responder") and not user.may("plant", "responder")
    assert user.may("plant", "viewer") and not user.may("elsewhere", "viewer")
    assert user.sites == {"hq", "plant"}
    assert verify(db, "alice", "a wrong password") is None
    assert verify(db, "mallory", "a long password") is None
    with pytest.raises(EdgeError, match="too short"):
        add_user(db, "bob", "viewer", None, "short")
    with pytest.raises(EdgeError, match="role"):
        add_user(db, "bob", "superuser", None, "a long password")
    with pytest.raises(EdgeError, match="user name"):
        add_user(db, "bob smith", "viewer", None, "a long password")
    assert add_user(db, "root", "admin", None, "another long password")
    admin = load_user(db, "root")
    assert admin is not None and admin.sites is None and admin.is_admin
    assert [u.name for u in list_users(db)] == ["alice", "root"]
    assert remove_user(db, "alice") and load_user(db, "alice") is None


def test_a_database_url_that_is_not_one_is_refused_without_echoing_it() -> None:
    with pytest.raises(DatabaseError) as error:
        Database("mysql://user:secret@host/db")
    assert "secret" not in str(error.value)


def test_an_unreachable_postgresql_is_named_without_its_password(tmp_path: Path) -> None:
    from edge.demos.broker import free_port

    unreachable = Database(f"postgresql://edge:hunter2@127.0.0.1:{free_port()}/edge")
    with pytest.raises(DatabaseError) as error:
        unreachable.migrate()
    assert "cannot reach the database at postgresql://127.0.0.1" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_wrong_passwords_are_throttled_per_name_and_address() -> None:
    from edge.central.console.guard import LoginThrottle

    throttle = LoginThrottle(limit=3, window_s=600)
    keys = ("name:alice", "address:10.0.0.9")
    for minute in range(3):
        assert throttle.wait_s(keys, now=minute * 60.0) == 0
        throttle.failed(keys, now=minute * 60.0)
    assert throttle.wait_s(keys, now=180.0) == pytest.approx(420.0)  # until the first expires
    assert throttle.wait_s(("name:alice", "address:10.0.0.10"), now=180.0) > 0  # the name
    assert throttle.wait_s(("name:bob", "address:10.0.0.9"), now=180.0) > 0  # the address
    assert throttle.wait_s(("name:bob", "address:10.0.0.10"), now=180.0) == 0  # control
    assert throttle.wait_s(keys, now=601.0) == 0  # the first failure left the window
    throttle.succeeded(("name:alice",))
    assert throttle.wait_s(("name:alice", "address:10.0.0.10"), now=200.0) == 0


def test_a_connection_survives_a_postgresql_restart() -> None:
    """A console worker thread must not stay on a connection the server dropped: a single
    statement is run again on a new connection; a transaction fails whole (its caller
    retries it), and the thread's next connection is a new one."""
    import psycopg

    from edge.demos.postgres import Postgres

    server = Postgres().start()
    try:
        database = Database(server.url)
        database.migrate()
        first = database.connection()
        server.stop()
        server.start_again()
        assert first.scalar("SELECT 1") == 1  # reopened underneath
        server.stop()
        server.start_again()
        with pytest.raises(psycopg.OperationalError), first.transaction():
            first.query("SELECT count(*) FROM alerts")
        again = database.connection()
        assert again is not first and again.scalar("SELECT count(*) FROM alerts") == 0
        database.close()
    finally:
        server.close()
