"""The state store under faults: a full disk, damage, a foreign file."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from disk_support import small_disk

from edge.analytics.risk import RiskAnalytics
from edge.cli import main
from edge.core.clock import SimulatedClock
from edge.core.errors import EdgeError
from edge.core.records import HourlyVector, RiskGrade
from edge.publish.outbox import alerts_for
from edge.settings import AnalyticsSettings, Settings
from edge.store import Store


def test_a_full_disk_never_moves_a_healthy_store_aside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with small_disk(tmp_path / "disk") as disk:
        state = disk.path / "state"
        with Store(state) as store:
            store.enroll("ann", "C-1", date(2026, 1, 1), [np.ones(128, np.float32)])
        disk.fill()
        assert disk.available() < 4096  # the disk really is full
        with pytest.raises(EdgeError, match="nothing was changed"):
            Store(state)
        assert [p.name for p in state.iterdir() if "corrupt" in p.name] == []
        # a read-only command says so in one line (and a hint), and touches nothing either
        monkeypatch.setenv("EDGE_STORAGE__STATE_DIR", str(state))
        assert main(["people"]) == 2
        err = capsys.readouterr().err
        assert "cannot open the state store" in err and "Traceback" not in err
        assert [line.split(":")[0] for line in err.strip().splitlines()] == ["error", "hint"]
        disk.free()
        with Store(state) as store:  # space again: everything is still there
            assert store.quarantined is None
            assert [p.person_id for p in store.people()] == ["ann"]


START = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
SETTINGS = Settings.model_validate({"device": {"id": "entrance-01", "site": "hq"},
                                    "mqtt": {"min_level": 0}})
KEY = b"k" * 32


def risk(store: Store, clock: SimulatedClock) -> RiskAnalytics:
    """Analytics as the service wires them: every graded hour alerted (min_level 0)."""
    return RiskAnalytics(store, AnalyticsSettings(min_faces_per_hour=2, min_history_hours=2),
                         ZoneInfo("UTC"), clock,
                         alerts_for=lambda grades: alerts_for(grades, SETTINGS, KEY,
                                                              clock.now()))


def seen(engine: RiskAnalytics, hour: int, minutes: tuple[int, ...], value: float) -> None:
    engine.observe([("ann", np.full(10, value), START + hour * HOUR + timedelta(minutes=m))
                    for m in minutes])


def test_an_hour_is_closed_graded_and_alerted_once_across_crashes(tmp_path: Path) -> None:
    """A clean stop saves the open hour; the hour then closes; a crash follows. The restart
    must not restore the stale open hour and close, grade and alert it a second time."""
    clock = SimulatedClock(START)
    with Store(tmp_path) as store:
        store.enroll("ann", "C-1", date(2026, 1, 1), [])
        store.record_hours([HourlyVector("ann", START - h * HOUR, np.full(10, 0.1), 5)
                            for h in range(1, 5)], keep_hours=168)  # some history
        engine = risk(store, clock)
        seen(engine, 0, (5, 10), 0.1)
        engine.flush()  # clean stop at 09:20: the open hour is saved
    with Store(tmp_path) as store:  # start again: the open hour continues
        clock.set(START + timedelta(minutes=30))
        engine = risk(store, clock)
        seen(engine, 0, (35, 40), 0.9)
        clock.set(START + HOUR + timedelta(minutes=1))
        (graded,) = engine.tick()  # 09:00-10:00 closes with four faces
        assert graded.hour_start == START and engine.alerts_queued == 1
        stored = store.history("ann", before=START + HOUR)[1][-1]
        # ... and the box crashes: no flush
    for _crash in range(3):
        with Store(tmp_path) as store:
            engine = risk(store, clock)
            clock.set(clock.now() + HOUR)
            assert engine.tick() == []  # nothing stale restored, nothing re-closed
            assert engine.observe([("ann", np.full(10, 0.5), START + timedelta(minutes=50))
                                   ]) == []  # a late frame of the closed hour: ignored
            np.testing.assert_array_equal(store.history("ann", before=START + HOUR)[1][-1],
                                          stored)
            assert sum(store.outbox_counts().values()) == 1  # one alert for that hour
            assert len(store.grades("ann")) == 1


def test_a_stored_hour_is_never_overwritten(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.enroll("ann", "C-1", date(2026, 1, 1), [])
        store.record_hours([HourlyVector("ann", START, np.full(10, 0.1), 9)], keep_hours=168)
        store.record_hours([HourlyVector("ann", START, np.full(10, 0.7), 2)], keep_hours=168)
        np.testing.assert_allclose(store.history("ann")[1], np.full((1, 10), 0.1))
        clock = SimulatedClock(START + HOUR)  # a clock set back replays the same hour
        engine = risk(store, clock)
        seen(engine, 0, (1, 2, 3), 0.9)
        clock.set(START + 2 * HOUR)
        assert engine.tick() == [] and engine.alerts_queued == 0
        np.testing.assert_allclose(store.history("ann")[1], np.full((1, 10), 0.1))


def test_a_grade_and_its_alert_are_committed_together(tmp_path: Path) -> None:
    """On a full disk a closed hour loses its vector, grade and alert together, never a
    grade without its alert; with space again the same call commits all three."""
    grade = RiskGrade("ann", START, "graded", 3, "Medium risk", 2.0, True, (), 30)
    vector = HourlyVector("ann", START, np.full(10, 0.1), 9)
    (message,) = alerts_for([grade], SETTINGS, KEY, START)
    with small_disk(tmp_path / "disk", size_kb=512) as disk:
        state = disk.path / "state"
        with Store(state) as store:
            store.enroll("ann", "C-1", date(2026, 1, 1), [])
            disk.fill()
            with pytest.raises(sqlite3.OperationalError, match="full"):
                store.record_hours([vector], [grade], keep_hours=168, messages=[message])
            assert (store.hours_kept("ann"), len(store.grades("ann")),
                    sum(store.outbox_counts().values())) == (0, 0, 0)
            disk.free()
            store.record_hours([vector], [grade], keep_hours=168, messages=[message])
            assert (store.hours_kept("ann"), len(store.grades("ann")),
                    sum(store.outbox_counts().values())) == (1, 1, 1)


def _with_unflushed_wal(folder: Path, person: str, *, whole: bool) -> tuple[Path, Path]:
    """Copies of a store's database and write-ahead log taken while it is open, as a crash
    leaves them. ``whole``: the store never reached its database file (everything is in
    the log); else only the enrolment of ``person`` is."""
    if not whole:
        with Store(folder) as store:
            store.enroll("first", "C-0", date(2026, 1, 1), [])  # checkpointed on close
    with Store(folder) as store, \
            contextlib.closing(sqlite3.connect(folder / "edge.sqlite3")) as keeper:
        keeper.execute("BEGIN")  # a reader holds the log: nothing is checkpointed
        keeper.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
        store.enroll(person, "C-1", date(2026, 1, 1), [])
        shutil.copy(folder / "edge.sqlite3", folder.parent / f"{folder.name}.db")
        shutil.copy(folder / "edge.sqlite3-wal", folder.parent / f"{folder.name}.wal")
    return folder.parent / f"{folder.name}.db", folder.parent / f"{folder.name}.wal"


def test_a_foreign_wal_is_set_aside_and_the_store_kept(tmp_path: Path) -> None:
    ours_db, ours_wal = _with_unflushed_wal(tmp_path / "ours", "ann", whole=False)
    _theirs_db, theirs_wal = _with_unflushed_wal(tmp_path / "theirs", "zed", whole=True)

    def lay(name: str, wal: Path) -> Path:
        state = tmp_path / name
        state.mkdir()
        shutil.copy(ours_db, state / "edge.sqlite3")
        shutil.copy(wal, state / "edge.sqlite3-wal")
        return state

    # our own log after a crash: applied, nothing set aside
    with Store(lay("crashed", ours_wal), owner=True) as store:
        assert store.foreign_wal is None
        assert {p.person_id for p in store.people()} == {"first", "ann"}
    # positive control: without the check SQLite applies another store's log silently
    with Store(lay("unchecked", theirs_wal)) as store:
        assert {p.person_id for p in store.people()} == {"zed"}
    # the service's start: the foreign log is set aside, the store is its own again
    state = lay("checked", theirs_wal)
    with Store(state, owner=True) as store:
        assert store.foreign_wal is not None and store.foreign_wal.is_file()
        assert {p.person_id for p in store.people()} == {"first"}
    with Store(state, owner=True) as again:  # and stays so: no crash loop
        assert again.foreign_wal is None and len(again.people()) == 1


def test_a_schema_that_contradicts_its_version_is_no_crash_loop(tmp_path: Path) -> None:
    """What a foreign log can leave: tables that exist while the version says none do.
    Every start crashed on "table people already exists"; now the store is set aside as
    damaged (kept, 0600) and a fresh one starts."""
    with Store(tmp_path) as store:
        store.enroll("ann", "C-1", date(2026, 1, 1), [])
    with contextlib.closing(sqlite3.connect(tmp_path / "edge.sqlite3")) as db:
        db.execute("PRAGMA user_version = 0")
    with Store(tmp_path) as store:
        assert store.quarantined is not None and store.quarantined.is_file()
        assert store.people() == []
    with Store(tmp_path) as again:
        assert again.quarantined is None
