"""The on-device state store: SQLite in WAL mode with ``synchronous=FULL``.

Only this file writes the state directory. Biometric templates are special-category data,
so the directory is 0700 and the database files 0600. The schema is versioned with
``PRAGMA user_version``; each entry of ``MIGRATIONS`` moves it one version forward.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np

from edge.errors import EdgeError

DB_NAME = "edge.sqlite3"
PERSON_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

MIGRATIONS: tuple[str, ...] = (
    # 1: enrolled people and their face templates
    """
    CREATE TABLE people (
        person_id     TEXT PRIMARY KEY,
        consent_ref   TEXT NOT NULL,
        consent_date  TEXT NOT NULL,
        enrolled_at   TEXT NOT NULL
    );
    CREATE TABLE templates (
        id          INTEGER PRIMARY KEY,
        person_id   TEXT NOT NULL REFERENCES people(person_id) ON DELETE CASCADE,
        descriptor  BLOB NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX templates_person ON templates(person_id);
    """,
)


@dataclass(frozen=True)
class Person:
    person_id: str
    consent_ref: str
    consent_date: str
    enrolled_at: str
    templates: int


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        old_umask = os.umask(0o077)  # files SQLite creates (-wal, -shm) are 0600 too
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.state_dir, 0o700)
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=True, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise EdgeError(f"{self.path}: cannot open the state store ({exc})",
                            "check storage.state_dir and its permissions") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise EdgeError(f"{self.path}: schema version {version} is newer than this "
                            f"software knows ({len(MIGRATIONS)})", "upgrade the edge package")
        for number in range(version + 1, len(MIGRATIONS) + 1):
            # one script per step, schema and version together, so a crash mid-way leaves
            # the previous version intact
            try:
                self._db.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[number - 1]}\n"
                                       f"PRAGMA user_version = {number};\nCOMMIT;")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # --- people and templates --------------------------------------------------------------
    def enroll(self, person_id: str, consent_ref: str, consent_date: date,
               descriptors: Sequence[np.ndarray]) -> int:
        """Add a person (or more templates to one); returns the person's template count."""
        now = _now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO people(person_id, consent_ref, consent_date, enrolled_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET "
                "consent_ref = excluded.consent_ref, consent_date = excluded.consent_date",
                (person_id, consent_ref, consent_date.isoformat(), now))
            db.executemany(
                "INSERT INTO templates(person_id, descriptor, created_at) VALUES (?, ?, ?)",
                [(person_id, np.asarray(d, np.float32).tobytes(), now) for d in descriptors])
            return int(db.execute("SELECT COUNT(*) FROM templates WHERE person_id = ?",
                                  (person_id,)).fetchone()[0])

    def people(self) -> list[Person]:
        rows = self._db.execute(
            "SELECT p.person_id, p.consent_ref, p.consent_date, p.enrolled_at, COUNT(t.id) "
            "FROM people p LEFT JOIN templates t USING(person_id) "
            "GROUP BY p.person_id ORDER BY p.person_id").fetchall()
        return [Person(*row) for row in rows]

    def templates(self) -> tuple[list[str], np.ndarray]:
        """All templates as (person ids, (M, 128) float32 matrix)."""
        rows = self._db.execute(
            "SELECT person_id, descriptor FROM templates ORDER BY id").fetchall()
        if not rows:
            return [], np.zeros((0, 128), np.float32)
        return ([r[0] for r in rows],
                np.stack([np.frombuffer(r[1], np.float32) for r in rows]))
