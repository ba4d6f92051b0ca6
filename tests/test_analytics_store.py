"""The analytics on the real SQLite store: ring, restart, corruption, concurrency."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edge.analytics.risk import RiskAnalytics
from edge.core.clock import SimulatedClock
from edge.core.records import HourlyVector, RiskGrade
from edge.settings import AnalyticsSettings
from edge.store import DB_NAME, Store

START = datetime(2026, 3, 2, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def hours(person: str, count: int, start: datetime = START) -> list[HourlyVector]:
    rng = np.random.default_rng(len(person) + count)
    return [HourlyVector(person, start + i * HOUR, rng.dirichlet(np.ones(10)), 7)
            for i in range(count)]


def grade(person: str, at: datetime) -> RiskGrade:
    return RiskGrade(person, at, "graded", 0, "No risk", 1.0, False, (), 30)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "state") as opened:
        for person in ("ann", "bob"):
            opened.enroll(person, "C-1", date(2026, 1, 1), [])
        yield opened


def test_ring_keeps_the_newest_hours_per_person(store: Store) -> None:
    rows = hours("ann", 200)
    store.record_hours(rows[:150], [grade("ann", START)], keep_hours=168)
    store.record_hours(rows[150:] + hours("bob", 5), [grade("ann", START + 199 * HOUR)],
                       keep_hours=168)
    kept, matrix = store.history("ann")
    assert len(kept) == 168 and kept[0] == START + 32 * HOUR and kept[-1] == START + 199 * HOUR
    np.testing.assert_allclose(matrix[-1], rows[-1].vector, rtol=1e-6)
    assert store.hours_kept("bob") == 5
    # the grade of an evicted hour went with it; the newest stays
    assert [g.hour_start for g in store.grades("ann")] == [START + 199 * HOUR]


def test_history_before_and_limit(store: Store) -> None:
    store.record_hours(hours("ann", 10), keep_hours=168)
    kept, _ = store.history("ann", before=START + 5 * HOUR, limit=3)
    assert kept == [START + 2 * HOUR, START + 3 * HOUR, START + 4 * HOUR]


def analytics(store: Store, clock: SimulatedClock, **settings: object) -> RiskAnalytics:
    return RiskAnalytics(store, AnalyticsSettings(**settings), ZoneInfo("UTC"), clock)


def test_a_partial_hour_survives_a_restart(tmp_path: Path) -> None:
    clock = SimulatedClock(START + 9 * HOUR)
    with Store(tmp_path) as first:
        first.enroll("ann", "C-1", date(2026, 1, 1), [])
        engine = analytics(first, clock, min_faces_per_hour=5)
        engine.observe([("ann", np.full(10, 0.1), START + 9 * HOUR + timedelta(minutes=m))
                        for m in (5, 10, 15)])
        engine.flush()  # what the service does on SIGTERM
    clock.set(START + 9 * HOUR + timedelta(minutes=40))
    with Store(tmp_path) as second:
        engine = analytics(second, clock, min_faces_per_hour=5)
        engine.observe([("ann", np.full(10, 0.4), None) for _ in range(3)])
        clock.set(START + 10 * HOUR)
        (result,) = engine.tick()
        assert result.status == "insufficient_history"
        kept, matrix = second.history("ann")
        assert kept == [START + 9 * HOUR]
        np.testing.assert_allclose(matrix[0], np.full(10, 0.25), rtol=1e-6)  # all six faces


def test_grades_accumulate_once_history_suffices(store: Store) -> None:
    clock = SimulatedClock(START)
    engine = analytics(store, clock, min_faces_per_hour=1, min_history_hours=24)
    statuses = []
    rng = np.random.default_rng(5)
    for hour in range(30):
        engine.observe([("ann", rng.dirichlet(np.ones(10) * 50), START + hour * HOUR)])
        clock.set(START + (hour + 1) * HOUR)
        statuses += [g.status for g in engine.tick()]
    assert statuses == ["insufficient_history"] * 24 + ["graded"] * 6
    assert len(store.grades("ann")) == 30


def test_corrupt_file_is_moved_aside_and_a_fresh_store_starts(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with Store(tmp_path) as fresh:
        assert fresh.quarantined is not None and fresh.quarantined.exists()
        assert fresh.quarantined.read_bytes().startswith(b"this is not a database")
        assert fresh.people() == []
        fresh.enroll("ann", "C", date(2026, 1, 1), [])
    with Store(tmp_path) as again:  # no crash loop: the fresh store is healthy
        assert again.quarantined is None and len(again.people()) == 1


def test_damaged_pages_are_caught_by_the_integrity_check(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.enroll("ann", "C", date(2026, 1, 1), [])
        store.record_hours(hours("ann", 160), keep_hours=168)
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = db.execute("SELECT rootpage FROM sqlite_master "
                          "WHERE name = 'hourly_vectors'").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
    path = tmp_path / DB_NAME
    data = bytearray(path.read_bytes())
    header = (root - 1) * page
    data[header:header + 12] = b"\x5a" * 12  # the root page's b-tree header: nonsense
    path.write_bytes(bytes(data))
    with Store(tmp_path) as fresh:
        assert fresh.quarantined is not None
        assert stat.S_IMODE(fresh.quarantined.stat().st_mode) == 0o600
        assert fresh.people() == []


def test_readers_and_a_writer_never_see_database_is_locked(tmp_path: Path) -> None:
    with Store(tmp_path) as setup:
        setup.enroll("ann", "C", date(2026, 1, 1), [])
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            with Store(tmp_path) as own:
                for i in range(150):
                    own.record_hours(hours("ann", 2, START + 2 * i * HOUR), keep_hours=168)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            with Store(tmp_path) as own:
                while not done.is_set():
                    own.history("ann")
                    own.grades()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read)
                                                   for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with Store(tmp_path) as check:
        assert check.hours_kept("ann") == 168


def test_migration_from_version_1_keeps_enrolments(tmp_path: Path) -> None:
    from edge.store import MIGRATIONS

    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    db.execute("INSERT INTO people VALUES ('ann', 'C', '2026-01-01', '2026-01-01T00:00:00Z')")
    db.commit()
    db.close()
    with Store(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert [p.person_id for p in store.people()] == ["ann"]
        store.record_hours(hours("ann", 3), keep_hours=168)
