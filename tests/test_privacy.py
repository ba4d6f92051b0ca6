"""Erasure, access requests, rotating pseudonyms, and forgetting while the service runs."""

from __future__ import annotations

import json
import stat
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.core.records import HourlyVector, OutboxMessage, PartialHour, RiskGrade
from edge.publish.pseudonym import pseudonym, rotation_period
from edge.store import Store

START = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
MARK = np.full(128, 1234.5678, np.float32)  # a template that is easy to find in raw bytes


def fill(store: Store, person: str) -> None:
    store.enroll(person, f"CONSENT-{person}", date(2026, 1, 5), [MARK if person == "ann"
                                                                else np.ones(128)])
    store.record_hours([HourlyVector(person, START + timedelta(hours=i), np.full(10, 0.1), 9)
                        for i in range(5)],
                       [RiskGrade(person, START, "graded", 2, "Low risk", 1.8, True, ("sad",),
                                  30)], keep_hours=168)
    store.save_partials([PartialHour(person, START + timedelta(hours=6), np.ones(10), 3)])
    store.enqueue([OutboxMessage(f"message-of-{person}", person, "edge/x", b"{}", START)],
                  max_messages=100)


def test_forget_removes_every_row_and_leaves_no_bytes(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        fill(store, "ann")
        fill(store, "bob")
        store.save_partials([PartialHour("ann", START, np.ones(10), 3),
                             PartialHour("bob", START, np.ones(10), 3)])
        removed = store.forget("ann")
        assert removed == {"outbox": 1, "risk_grades": 1, "hourly_vectors": 5,
                           "partial_hours": 1, "templates": 1, "people": 1}
        assert store.export("ann") is None
        assert [p.person_id for p in store.people()] == ["bob"]
        assert store.hours_kept("bob") == 5  # nobody else is touched
    for path in tmp_path.iterdir():
        assert MARK.tobytes() not in path.read_bytes(), path  # zeroed, not just unlinked


def test_nothing_is_recreated_for_a_forgotten_person(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        fill(store, "ann")
        store.forget("ann")
        # what a running service might still hand over a moment after the erasure
        store.record_hours([HourlyVector("ann", START, np.zeros(10), 9)],
                           [RiskGrade("ann", START, "graded", 3, "Medium risk", 2.0, True,
                                      (), 30)], keep_hours=168)
        store.enqueue([OutboxMessage("b" * 32, "ann", "edge/x", b"{}", START)],
                      max_messages=10)
        assert store.hours_kept("ann") == 0 and store.grades("ann") == []
        assert store.outbox_counts() == {}


def test_export_without_and_with_templates(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("EDGE_STORAGE__STATE_DIR", str(state))
    with Store(state) as store:
        fill(store, "ann")
    assert main(["export", "ann"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["consent_ref"] == "CONSENT-ann" and len(record["hourly_vectors"]) == 5
    assert record["templates"] and "descriptor" not in record["templates"][0]
    assert record["risk_grades"][0]["label"] == "Low risk"
    output = tmp_path / "ann.json"
    assert main(["export", "ann", "--with-templates", "-o", str(output)]) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert len(json.loads(output.read_text())["templates"][0]["descriptor"]) == 128
    assert main(["export", "nobody"]) == 2
    assert main(["forget", "nobody"]) == 2
    assert "is not enrolled" in capsys.readouterr().err
    assert main(["forget", "ann"]) == 0
    out = capsys.readouterr().out
    assert "forgot ann: 1 outbox, 1 risk grades, 5 hourly vectors" in out


def test_pseudonyms_rotate_by_period() -> None:
    key = b"k" * 32
    monday, sunday = datetime(2026, 11, 23, 9, tzinfo=timezone.utc), datetime(
        2026, 11, 29, 22, tzinfo=timezone.utc)
    next_monday = monday + timedelta(days=7)
    weekly = [pseudonym("ann", key, rotation_period(t, "weekly"))
              for t in (monday, sunday, next_monday)]
    assert weekly[0] == weekly[1] != weekly[2]
    assert rotation_period(monday, "daily") != rotation_period(monday + timedelta(days=1),
                                                               "daily")
    assert rotation_period(monday, "monthly") == "2026-11"
    assert pseudonym("ann", key, rotation_period(monday, "never")) == pseudonym(
        "ann", key, rotation_period(next_monday, "never"))
