from __future__ import annotations

import sqlite3
import stat
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from edge.core.errors import EdgeError
from edge.store import DB_NAME, MIGRATIONS, Store


def test_state_is_private_and_durable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Store(state) as store:
        store.enroll("p-1", "CONSENT-1", date(2026, 1, 2), [np.ones(128, np.float32)])
        assert store.schema_version == len(MIGRATIONS)
        assert store.durability() == {"journal_mode": "wal", "synchronous": 2,  # 2 = FULL
                                      "foreign_keys": 1, "secure_delete": 1}
        for path in state.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_templates_round_trip_and_people_never_show_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    first, second = rng.normal(size=(2, 128)).astype(np.float32)
    with Store(tmp_path) as store:
        assert store.enroll("p-1", "C-1", date(2026, 1, 2), [first]) == 1
        assert store.enroll("p-1", "C-2", date(2026, 2, 3), [second]) == 2
        ids, matrix = store.templates()
        assert ids == ["p-1", "p-1"]
        np.testing.assert_array_equal(matrix, [first, second])
        (person,) = store.people()
        assert (person.person_id, person.consent_ref, person.consent_date, person.templates) \
            == ("p-1", "C-2", "2026-02-03", 2)
        assert not any(isinstance(v, bytes | np.ndarray) for v in vars(person).values())


def test_reopening_does_not_migrate_twice(tmp_path: Path) -> None:
    Store(tmp_path).close()
    with Store(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(EdgeError, match="newer than this software knows"):
        Store(tmp_path)
