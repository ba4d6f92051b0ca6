"""The on-device state store: SQLite in WAL mode with ``synchronous=FULL``.

Only this file writes the state directory. Biometric templates are special-category data,
so the directory is 0700 and the database files 0600. The schema is versioned with
``PRAGMA user_version``; each entry of ``MIGRATIONS`` moves it one version forward.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np

from edge.core.clock import parse_utc, utc_text
from edge.core.emotions import COMPONENTS
from edge.core.errors import EdgeError
from edge.core.logs import get_logger
from edge.core.records import HourlyVector, OutboxMessage, PartialHour, RiskGrade

DB_NAME = "edge.sqlite3"
# matched whole (re.fullmatch): with "^...$" and re.match, "E-100\n" passed as a twin of
# "E-100" that `edge forget E-100` would leave behind
PERSON_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

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
    # 2: hourly ring buffers, partial hours, risk grades, and the MQTT outbox
    f"""
    CREATE TABLE hourly_vectors (
        person_id   TEXT NOT NULL REFERENCES people(person_id) ON DELETE CASCADE,
        hour_start  TEXT NOT NULL,
        {", ".join(f"{name} REAL NOT NULL" for name in COMPONENTS)},
        faces       INTEGER NOT NULL,
        PRIMARY KEY (person_id, hour_start)
    ) WITHOUT ROWID;
    CREATE TABLE partial_hours (
        person_id   TEXT PRIMARY KEY REFERENCES people(person_id) ON DELETE CASCADE,
        hour_start  TEXT NOT NULL,
        total       BLOB NOT NULL,
        faces       INTEGER NOT NULL
    );
    CREATE TABLE risk_grades (
        person_id     TEXT NOT NULL REFERENCES people(person_id) ON DELETE CASCADE,
        hour_start    TEXT NOT NULL,
        status        TEXT NOT NULL,
        level         INTEGER NOT NULL,
        label         TEXT NOT NULL,
        lof_score     REAL,
        anomaly       INTEGER NOT NULL,
        fired         TEXT NOT NULL,
        history_hours INTEGER NOT NULL,
        PRIMARY KEY (person_id, hour_start)
    ) WITHOUT ROWID;
    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id  TEXT NOT NULL UNIQUE,
        person_id   TEXT REFERENCES people(person_id) ON DELETE CASCADE,
        topic       TEXT NOT NULL,
        payload     BLOB NOT NULL,
        created_at  TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        state       TEXT NOT NULL DEFAULT 'pending',
        retry_after TEXT,
        last_error  TEXT
    );
    """,
    # 3: the store's identity, so that a write-ahead log from another database is told apart
    """
    CREATE TABLE store_identity (id TEXT NOT NULL);
    INSERT INTO store_identity(id) VALUES (lower(hex(randomblob(16))));
    """,
    # 4: every reveal of who is behind a pseudonym (`edge reveal`): when, by whom, why, and
    # which pseudonym; never the person, so `edge forget` has nothing here to erase
    """
    CREATE TABLE reveal_audit (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        at         TEXT NOT NULL,
        operator   TEXT NOT NULL,
        pseudonym  TEXT NOT NULL,
        reason     TEXT NOT NULL,
        found      INTEGER NOT NULL
    );
    """,
)


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Damage to the file itself (SQLITE_CORRUPT, SQLITE_NOTADB), as opposed to a full disk,
    an I/O error or a permission (SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN, ...), which say
    nothing about the data: a healthy store on a full disk must never be moved aside."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(exc)  # Python 3.10 (JetPack 6): the messages SQLite gives for those two codes
    return "malformed" in text or "not a database" in text


class StoreOpenError(EdgeError):
    """The store cannot be opened, for a reason that is not damage. ``out_of_space``: the
    disk is full (or failing), which freeing space mends without a person changing
    anything; else a permission or a wrong path."""

    def __init__(self, message: str, hint: str, *, out_of_space: bool) -> None:
        super().__init__(message, hint)
        self.out_of_space = out_of_space


def _out_of_space(exc: Exception) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)
    name = getattr(exc, "sqlite_errorname", None)
    if name is not None:
        return name.startswith(("SQLITE_FULL", "SQLITE_IOERR"))
    return "disk" in str(exc) or "I/O" in str(exc)


def _is_io_problem(exc: sqlite3.OperationalError) -> bool:
    """A full disk, an I/O error, a lock or a permission: nothing wrong with the data."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name.startswith(("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN",
                                "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED",
                                "SQLITE_PERM", "SQLITE_NOMEM"))
    text = str(exc)
    return any(word in text for word in ("disk", "I/O", "unable to open", "readonly",
                                         "locked", "permission", "memory"))


@dataclass(frozen=True)
class Person:
    person_id: str
    consent_ref: str
    consent_date: str
    enrolled_at: str
    templates: int


def _now() -> str:
    return utc_text(datetime.now(timezone.utc))



class Store:
    @staticmethod
    def exists(state_dir: Path) -> bool:
        """A store was created there (read-only commands must not create one)."""
        return (Path(state_dir) / DB_NAME).is_file()

    def __init__(self, state_dir: Path, *, owner: bool = False) -> None:
        """``owner``: the caller is the only process using the store (the service at its
        start), so a write-ahead log left beside it can be checked before it is applied."""
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        self.quarantined: Path | None = None
        self.foreign_wal: Path | None = None
        old_umask = os.umask(0o077)  # files SQLite creates (-wal, -shm) are 0600 too
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.state_dir, 0o700)
            if owner:
                self.foreign_wal = self._set_aside_a_foreign_wal()
            self._db = self._connect()
            if not self._healthy():
                self._db.close()
                self.quarantined = self._move_aside()
                self._db = self._connect()
            os.chmod(self.path, 0o600)
            self._configure()
            try:
                self._migrate()
            except sqlite3.OperationalError as exc:
                if _is_io_problem(exc):
                    raise
                # the schema contradicts its version ("table people already exists"): what
                # a foreign log leaves. Set the store aside, as damage, and start afresh.
                self._problem = f"schema does not match its version: {exc}"
                self._db.close()
                self.quarantined = self._move_aside()
                self._db = self._connect()
                self._configure()
                self._migrate()
        except (OSError, sqlite3.Error) as exc:
            # not corruption (that was handled above): a full disk, an I/O error, a
            # permission. Nothing was moved or deleted; the store is as it was.
            raise StoreOpenError(
                f"{self.path}: cannot open the state store ({exc}); nothing was changed",
                "free disk space, or check storage.state_dir and its permissions, then start "
                "again", out_of_space=_out_of_space(exc)) from None
        finally:
            os.umask(old_umask)

    def _view(self, mode: str, *, check: bool) -> tuple[str | None, int, bool]:
        """(store id, schema version, integrity ok when ``check``) as a read-only connection
        sees the store (``mode``: "immutable=1" reads the database file alone, "mode=ro" with
        its write-ahead log applied; neither writes nor checkpoints anything)."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?{mode}", uri=True)) as db:
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                healthy = not check or db.execute("PRAGMA integrity_check").fetchall() == [
                    ("ok",)]
                try:
                    row = db.execute("SELECT id FROM store_identity").fetchone()
                except sqlite3.OperationalError:  # no such table (yet)
                    row = None
        except sqlite3.DatabaseError:
            return None, 0, False
        return (None if row is None else str(row[0])), version, healthy

    def _set_aside_a_foreign_wal(self) -> Path | None:
        """A write-ahead log whose pages make the database another store (or no store) did
        not come from this database: SQLite would apply it silently, replacing enrolments
        and history, or fail on every start. Move it (and its index) aside, untouched."""
        wal = Path(f"{self.path}-wal")
        if not self.path.is_file() or not wal.is_file() or wal.stat().st_size == 0:
            return None
        own_id, own_version, _ = self._view("immutable=1", check=False)
        if own_id is None:
            return None  # a store not checkpointed yet (or one too damaged to say)
        log_id, log_version, log_healthy = self._view("mode=ro", check=True)
        # its own log (a crash) unless it breaks a file that is sound alone; the file alone
        # is checked only then, as `_healthy` checks the store next anyway
        if log_id == own_id and log_version >= own_version and (
                log_healthy or not self._view("immutable=1", check=True)[2]):
            return None
        # a log holding another store's identity, taking the schema back, or breaking the
        # file: it came from elsewhere. (A log that only rewrites ordinary pages of a store
        # laid out identically cannot be told apart: SQLite links no log to its database.)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = wal.with_name(f"{wal.name}.foreign-{stamp}")
        wal.replace(target)
        Path(f"{self.path}-shm").unlink(missing_ok=True)
        get_logger(__name__).error(
            "state_store_foreign_wal_set_aside", moved_to=str(target),
            action="the store continues from its own last checkpoint; the foreign log is "
                   "kept for inspection (0600)")
        return target

    def _configure(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # erased rows are overwritten with zeros, not left in free pages (GDPR erasure)
        self._db.execute("PRAGMA secure_delete=ON")

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode; transactions are explicit (BEGIN IMMEDIATE) so that a writer
        # waits for the lock up front instead of failing half-way; readers never block in WAL
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=True,
                               timeout=30)

    def _healthy(self) -> bool:
        """False only for real damage; an I/O or space error propagates (nothing is moved)."""
        try:
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            self._problem = str(exc)
            return False
        self._problem = "; ".join(str(r[0]) for r in rows[:3])
        return rows == [("ok",)]

    def _move_aside(self) -> Path:
        """Keep a damaged database for inspection (0600), start a fresh one: no crash loop."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{target}{suffix}"))
        get_logger(__name__).error(
            "state_store_corrupt_moved_aside", problem=self._problem, moved_to=str(target),
            action="a fresh store was created; enrolments and history start empty")
        return target

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

    def durability(self) -> dict[str, str | int]:
        """This connection's journal mode, sync level (2 = FULL), foreign keys and secure
        delete: what the promises about power cuts and erasure rest on."""
        return {name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete")}

    # --- people and templates --------------------------------------------------------------
    def enroll(self, person_id: str, consent_ref: str, consent_date: date,
               descriptors: Sequence[np.ndarray]) -> int:
        """Add a person (or more templates to one); returns the person's template count."""
        if not re.fullmatch(PERSON_ID_PATTERN, person_id):
            raise EdgeError(f"{person_id!r}: a person id is 1-64 letters, digits, '.', '_' "
                            "or '-'")
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

    # --- hourly ring buffers -------------------------------------------------------------
    def has_hour(self, person_id: str, hour_start: datetime) -> bool:
        return self._db.execute(
            "SELECT 1 FROM hourly_vectors WHERE person_id = ? AND hour_start = ?",
            (person_id, utc_text(hour_start))).fetchone() is not None

    def record_hours(self, vectors: Sequence[HourlyVector], grades: Sequence[RiskGrade] = (),
                     *, keep_hours: int, messages: Sequence[OutboxMessage] = (),
                     max_messages: int = 10_000) -> int:
        """Store closed hours, their grades and their alerts in one transaction (a full disk
        loses all three or none); keep a ring per person. Returns the alerts the outbox
        bound dropped.

        An hour already stored is never replaced: an hour is closed, graded and alerted
        once. At most ``keep_hours`` hours are kept per person: the oldest drop out on
        insert, and with them every grade older than the oldest hour kept. Nothing about a
        person outlives the ring.
        """
        columns = ", ".join(COMPONENTS)
        numbered = ", ".join(f"?{i}" for i in range(3, len(COMPONENTS) + 3))
        with self.transaction() as db:
            # rows of a person erased meanwhile (`edge forget`) are skipped, never re-created
            db.executemany(
                f"INSERT OR IGNORE INTO hourly_vectors(person_id, hour_start, {columns}, faces) "
                f"SELECT ?1, ?2, {numbered}, ?{len(COMPONENTS) + 3} "
                f"WHERE EXISTS (SELECT 1 FROM people WHERE person_id = ?1)",
                [(v.person_id, utc_text(v.hour_start), *map(float, v.vector), v.faces)
                 for v in vectors])
            db.executemany(
                "INSERT OR IGNORE INTO risk_grades(person_id, hour_start, status, level, label, "
                "lof_score, anomaly, fired, history_hours) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                " ?9 WHERE EXISTS (SELECT 1 FROM people WHERE person_id = ?1)",
                [(g.person_id, utc_text(g.hour_start), g.status, g.level, g.label, g.lof_score,
                  int(g.anomaly), ",".join(g.fired), g.history_hours) for g in grades])
            # the open hour a restart would restore is closed now: never restore it again
            db.executemany("DELETE FROM partial_hours WHERE person_id = ? AND hour_start <= ?",
                           [(v.person_id, utc_text(v.hour_start)) for v in vectors])
            dropped = self._enqueue(db, messages, max_messages) if messages else 0
            for person_id in {v.person_id for v in vectors}:
                db.execute(
                    "DELETE FROM hourly_vectors WHERE person_id = ?1 AND hour_start NOT IN "
                    "(SELECT hour_start FROM hourly_vectors WHERE person_id = ?1 "
                    " ORDER BY hour_start DESC LIMIT ?2)", (person_id, keep_hours))
                db.execute(
                    "DELETE FROM risk_grades WHERE person_id = ?1 AND hour_start < "
                    "(SELECT MIN(hour_start) FROM hourly_vectors WHERE person_id = ?1)",
                    (person_id,))
        return dropped

    def history(self, person_id: str, before: datetime | None = None,
                limit: int | None = None) -> tuple[list[datetime], np.ndarray]:
        """A person's hourly vectors, oldest first, strictly before ``before``."""
        query = (f"SELECT hour_start, {', '.join(COMPONENTS)} FROM hourly_vectors "
                 "WHERE person_id = ? AND hour_start < ? ORDER BY hour_start DESC LIMIT ?")
        rows = self._db.execute(query, (person_id, utc_text(before) if before else "~",
                                        -1 if limit is None else limit)).fetchall()
        rows.reverse()
        hours = [parse_utc(r[0]) for r in rows]
        matrix = np.asarray([r[1:] for r in rows], np.float64).reshape(-1, len(COMPONENTS))
        return hours, matrix

    def newest_hour(self) -> datetime | None:
        """The start of the newest hour stored for anyone (the clock must not fall behind)."""
        row = self._db.execute("SELECT MAX(hour_start) FROM hourly_vectors").fetchone()
        return None if row is None or row[0] is None else parse_utc(row[0])

    def hours_kept(self, person_id: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM hourly_vectors WHERE person_id = ?",
                                    (person_id,)).fetchone()[0])

    # --- partial hours (flushed on shutdown, recovered on start) -----------------------
    def save_partials(self, partials: Sequence[PartialHour]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM partial_hours")
            db.executemany(
                "INSERT INTO partial_hours(person_id, hour_start, total, faces) "
                "VALUES (?, ?, ?, ?)",
                [(p.person_id, utc_text(p.hour_start), np.asarray(p.total, np.float64).tobytes(),
                  p.faces) for p in partials])

    def load_partials(self) -> list[PartialHour]:
        rows = self._db.execute(
            "SELECT person_id, hour_start, total, faces FROM partial_hours").fetchall()
        return [PartialHour(r[0], parse_utc(r[1]), np.frombuffer(r[2], np.float64).copy(), r[3])
                for r in rows]

    # --- risk grades -------------------------------------------------------------------------
    def grades(self, person_id: str | None = None) -> list[RiskGrade]:
        query = ("SELECT person_id, hour_start, status, level, label, lof_score, anomaly, fired, "
                 "history_hours FROM risk_grades")
        rows = (self._db.execute(query + " WHERE person_id = ? ORDER BY hour_start",
                                 (person_id,)) if person_id is not None else
                self._db.execute(query + " ORDER BY person_id, hour_start")).fetchall()
        return [RiskGrade(r[0], parse_utc(r[1]), r[2], r[3], r[4], r[5], bool(r[6]),
                          tuple(f for f in r[7].split(",") if f), r[8]) for r in rows]

    # --- MQTT outbox ---------------------------------------------------------------------
    def enqueue(self, messages: Sequence[OutboxMessage], *, max_messages: int) -> int:
        """Commit messages to the outbox; enforce its bound. Returns how many were dropped."""
        with self.transaction() as db:
            return self._enqueue(db, messages, max_messages)

    @staticmethod
    def _enqueue(db: sqlite3.Connection, messages: Sequence[OutboxMessage],
                 max_messages: int) -> int:
        """Beyond ``max_messages`` the oldest messages go first; the caller reports how many.
        Nothing goes by age: a wall clock that jumps forward would otherwise throw away every
        unsent alert. A message id already queued is not queued twice."""
        db.executemany(
            "INSERT OR IGNORE INTO outbox(message_id, person_id, topic, payload, created_at) "
            "SELECT ?1, ?2, ?3, ?4, ?5 WHERE ?2 IS NULL OR EXISTS "
            "(SELECT 1 FROM people WHERE person_id = ?2)",
            [(m.message_id, m.person_id, m.topic, m.payload, utc_text(m.created_at))
             for m in messages])
        return db.execute(
            "DELETE FROM outbox WHERE id NOT IN "
            "(SELECT id FROM outbox ORDER BY id DESC LIMIT ?)", (max_messages,)).rowcount

    def due_messages(self, now: datetime, limit: int = 100,
                     exclude: Sequence[str] = ()) -> list[OutboxMessage]:
        """Pending messages, and refused ones whose retry time has come, oldest first."""
        rows = self._db.execute(
            "SELECT message_id, person_id, topic, payload, created_at, attempts FROM outbox "
            "WHERE state = 'pending' OR (state = 'refused' AND retry_after <= ?) "
            "ORDER BY id LIMIT ?", (utc_text(now), limit + len(exclude))).fetchall()
        skip = set(exclude)
        return [OutboxMessage(r[0], r[1], r[2], bytes(r[3]), parse_utc(r[4]), r[5])
                for r in rows if r[0] not in skip][:limit]

    def delivered(self, message_ids: Sequence[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE message_id = ?",
                           [(m,) for m in message_ids])

    def refused(self, message_id: str, reason: str, retry_after: datetime) -> None:
        """The broker said no (e.g. ACL): keep the alert, note why, try again later."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state = 'refused', attempts = attempts + 1, "
                       "last_error = ?, retry_after = ? WHERE message_id = ?",
                       (reason, utc_text(retry_after), message_id))

    def outbox_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {state: count for state, count in rows}

    def outbox_messages(self) -> list[tuple[str, str, int, str | None]]:
        """(message id, state, attempts, last error) of every queued message, oldest first."""
        return [tuple(r) for r in self._db.execute(
            "SELECT message_id, state, attempts, last_error FROM outbox ORDER BY id")]

    # --- data subject rights -----------------------------------------------------------
    def audit_reveal(self, at: datetime, operator: str, pseudonym: str, reason: str,
                     found: bool) -> None:
        with self.transaction():
            self._db.execute("INSERT INTO reveal_audit (at, operator, pseudonym, reason, found) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (utc_text(at), operator, pseudonym, reason, int(found)))

    def reveal_audit(self) -> list[tuple[str, str, str, str, bool]]:
        """(at, operator, pseudonym, reason, found), oldest first."""
        return [(r[0], r[1], r[2], r[3], bool(r[4])) for r in self._db.execute(
            "SELECT at, operator, pseudonym, reason, found FROM reveal_audit ORDER BY id")]

    def people_signature(self) -> tuple[int, int, int]:
        """Changes whenever someone is enrolled or forgotten (the service polls it)."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM people), COUNT(*), COALESCE(MAX(id), 0) "
            "FROM templates").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def forget(self, person_id: str) -> dict[str, int]:
        """Erase everything held about a person; returns what was removed, table by table.

        Deleted pages are zeroed (secure_delete) and the WAL is checkpointed and truncated,
        so the data does not linger in the database files either.
        """
        tables = ("outbox", "risk_grades", "hourly_vectors", "partial_hours", "templates",
                  "people")
        removed: dict[str, int] = {}
        with self.transaction() as db:
            for table in tables:
                removed[table] = db.execute(f"DELETE FROM {table} WHERE person_id = ?",
                                            (person_id,)).rowcount
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def export(self, person_id: str, with_templates: bool = False) -> dict[str, object] | None:
        """What the box holds about a person (an access request); None if unknown."""
        person = next((p for p in self.people() if p.person_id == person_id), None)
        if person is None:
            return None
        hours, matrix = self.history(person_id)
        templates = self._db.execute("SELECT descriptor, created_at FROM templates "
                                     "WHERE person_id = ? ORDER BY id", (person_id,)).fetchall()
        partial = self._db.execute("SELECT hour_start, faces FROM partial_hours "
                                   "WHERE person_id = ?", (person_id,)).fetchall()
        queued = self._db.execute("SELECT message_id, state, created_at FROM outbox "
                                  "WHERE person_id = ? ORDER BY id", (person_id,)).fetchall()
        return {
            "person_id": person.person_id, "consent_ref": person.consent_ref,
            "consent_date": person.consent_date, "enrolled_at": person.enrolled_at,
            "templates": [
                {"created_at": created, **({"descriptor": np.frombuffer(blob, np.float32)
                                            .round(6).tolist()} if with_templates else {})}
                for blob, created in templates],
            "hourly_vectors": [
                {"hour_start": utc_text(h), **dict(zip(COMPONENTS,
                                                       (round(float(v), 6) for v in row)))}
                for h, row in zip(hours, matrix)],
            "open_hour": [{"hour_start": h, "faces": f} for h, f in partial],
            "risk_grades": [
                {"hour_start": utc_text(g.hour_start), "status": g.status, "level": g.level,
                 "label": g.label, "lof_score": g.lof_score, "anomaly": g.anomaly,
                 "fired": list(g.fired)} for g in self.grades(person_id)],
            "queued_alerts": [{"message_id": m, "state": s, "created_at": c}
                              for m, s, c in queued],
        }
