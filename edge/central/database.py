"""The collector's database: SQLite (the embedded default) or PostgreSQL (a fleet), one schema.

- One list of migrations, portable SQL, for both; ``{id}`` stands for each dialect's
  auto-numbered key. The version is a row in ``schema_version`` (``PRAGMA user_version``
  is SQLite's alone), moved forward in the same transaction as the migration's tables.
- SQL is written with ``?`` placeholders; psycopg wants ``%s``, and gets them.
- SQLite runs in WAL mode with ``synchronous=FULL``: a row the collector has acknowledged
  to the broker survives a power cut. PostgreSQL's defaults already commit durably.
- One connection per thread (the collector's writer, each console request's worker):
  ``connection()`` hands out the calling thread's own.
- Times are UTC: an alert's hours as the devices' text (``2026-11-24T09:00:00Z``, which
  sorts), the collector's own instants as seconds since the epoch.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from edge.core.errors import EdgeError
from edge.secrets import credential
from edge.settings import CentralSettings, from_app_root

MIGRATIONS: tuple[str, ...] = (
    # 1: alerts, what was done about them, devices, accounts
    """
    CREATE TABLE alerts (
        message_id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        device TEXT NOT NULL,
        person TEXT NOT NULL,
        hour_start TEXT NOT NULL,
        hour_end TEXT NOT NULL,
        level INTEGER NOT NULL,
        label TEXT NOT NULL,
        anomaly INTEGER NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        received_by TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'open'
    );
    CREATE INDEX alerts_by_received ON alerts (received_at);
    CREATE INDEX alerts_by_device ON alerts (site, device, received_at);
    CREATE INDEX alerts_by_person ON alerts (person, hour_start);
    CREATE INDEX alerts_by_state ON alerts (state, received_at);
    CREATE TABLE alert_actions (
        id {id},
        message_id TEXT NOT NULL REFERENCES alerts (message_id),
        action TEXT NOT NULL,
        note TEXT NOT NULL,
        actor TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX alert_actions_by_alert ON alert_actions (message_id, at);
    CREATE TABLE devices (
        site TEXT NOT NULL,
        device TEXT NOT NULL,
        availability TEXT,
        reason TEXT,
        availability_at DOUBLE PRECISION,
        last_seen DOUBLE PRECISION NOT NULL,
        stats_at DOUBLE PRECISION,
        uptime_s DOUBLE PRECISION,
        frames_per_s DOUBLE PRECISION,
        outbox_depth INTEGER,
        temperature_c DOUBLE PRECISION,
        camera_reconnects INTEGER,
        faults TEXT,
        PRIMARY KEY (site, device)
    );
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE grants (
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        site TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (user_name, site)
    );
    """,
)

Dialect = Literal["sqlite", "postgresql"]
MIGRATION_LOCK = 0x65646765  # "edge": PostgreSQL's advisory lock around migrations
IDENTITY = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
            "postgresql": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}


class DatabaseError(EdgeError):
    """The database cannot be opened or used; the message says which and what to do."""


class SchemaTooNew(DatabaseError):
    """The database was migrated by a newer edge: this one must not write to it."""


class _Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...


class Connection:
    """One thread's connection; ``?`` placeholders for both dialects.

    A PostgreSQL connection that the server dropped (a restart) is opened again by
    ``reopen`` and the statement run once more, outside a transaction only: inside one,
    the failure is the transaction's, and its caller retries the whole."""

    def __init__(self, raw: Any, dialect: Dialect,
                 reopen: Callable[[], Any] | None = None) -> None:
        self.raw = raw
        self.dialect = dialect
        self.reopen = reopen
        self._depth = 0

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        try:
            return self.raw.execute(self._sql(sql), tuple(params))
        except Exception:
            if self._depth or self.reopen is None or self.usable:
                raise
            self.raw = self.reopen()
            return self.raw.execute(self._sql(sql), tuple(params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return int(self._run(sql, params).rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor: _Cursor = self._run(sql, params)
        return [tuple(row) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """All or nothing; SQLite takes its write lock at the start (BEGIN IMMEDIATE), so a
        second writer waits instead of failing half way."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            if self.dialect == "postgresql":
                with self.raw.transaction():
                    yield self
            else:
                self.raw.execute("BEGIN IMMEDIATE")
                try:
                    yield self
                except BaseException:
                    self.raw.execute("ROLLBACK")
                    raise
                self.raw.execute("COMMIT")
        finally:
            self._depth = 0

    @property
    def usable(self) -> bool:
        if self.dialect == "postgresql":
            return not (self.raw.closed or self.raw.broken)
        return True

    def close(self) -> None:
        self.raw.close()


class Database:
    """Where the collector keeps what it received: a URL, and a connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            self.dialect: Dialect = "postgresql"
            self.path: Path | None = None
        elif url.startswith("sqlite:///"):  # sqlite:///relative.db, sqlite:////absolute.db
            self.dialect = "sqlite"
            self.path = from_app_root(Path(url.removeprefix("sqlite:///")))
        else:
            raise DatabaseError("central.database: not a database URL (the value is not "
                                "shown: it may hold a password)",
                                "use postgresql://USER@HOST/NAME or sqlite:////absolute/path.db")
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: CentralSettings) -> Database:
        """The URL from the credential `central-database-url`, the settings (or
        EDGE_CENTRAL__DATABASE), else SQLite in the collector's state folder."""
        url = credential("central-database-url")
        if url is None and settings.database is not None:
            url = settings.database.get_secret_value()
        if url is None:
            url = f"sqlite:///{settings.state_dir / 'central.db'}"
        return cls(url)

    @property
    def where(self) -> str:
        """The database, named for a log line: never the password."""
        if self.path is not None:
            return str(self.path)
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return f"postgresql://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"

    def connection(self) -> Connection:
        """The calling thread's connection; a new one where it has none, or where its
        PostgreSQL connection broke (a server restart), so no thread stays on a dead one."""
        existing: Connection | None = getattr(self._local, "connection", None)
        if existing is not None and not existing.usable:
            self.discard()
            existing = None
        if existing is None:
            existing = self._open()
            self._local.connection = existing
            with self._lock:
                self._all.append(existing)
        return existing

    def _open(self) -> Connection:
        if self.dialect == "postgresql":
            return Connection(self._connect_postgresql(), "postgresql",
                              reopen=self._connect_postgresql)
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            raw = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                                  check_same_thread=False)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=FULL")
            raw.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseError(f"cannot open the database {self.path}: {exc}",
                                "check central.state_dir: the folder must exist or be "
                                "creatable, and writable by the collector's user") from None
        return Connection(raw, "sqlite")

    def _connect_postgresql(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise DatabaseError(f"cannot reach the database at {self.where}: {first}",
                                "check that PostgreSQL runs and the URL's user, host "
                                "and database name") from None

    def migrate(self) -> int:
        """Bring the schema up to date, one migration per transaction; the version now.
        Replicas starting together take turns (PostgreSQL: an advisory lock; SQLite: its
        write lock), so each migration runs once."""
        db = self.connection()
        while True:
            with db.transaction():
                if self.dialect == "postgresql":
                    db.query("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                db.execute("CREATE TABLE IF NOT EXISTS schema_version "
                           "(version INTEGER NOT NULL)")
                version = int(db.scalar("SELECT max(version) FROM schema_version") or 0)
                if version > len(MIGRATIONS):
                    raise SchemaTooNew(f"the database at {self.where} has schema version "
                                        f"{version}; this edge knows up to {len(MIGRATIONS)}",
                                        "upgrade edge on this machine to the collectors' "
                                        "version")
                if version == len(MIGRATIONS):
                    return version
                script = MIGRATIONS[version].replace("{id}", IDENTITY[self.dialect])
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))

    def discard(self) -> None:
        """Close the calling thread's connection (after a failure); other threads keep theirs."""
        existing: Connection | None = getattr(self._local, "connection", None)
        if existing is None:
            return
        self._local.connection = None
        with self._lock:
            if existing in self._all:
                self._all.remove(existing)
        with contextlib.suppress(Exception):
            existing.close()

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._local = threading.local()
