"""A throwaway PostgreSQL server on a free loopback port, in its own temporary folder.

For the tests and the fleet benchmark: the distribution's server binaries, ``initdb`` as
an unprivileged user (PostgreSQL refuses to run as root; as root we run it as the
``postgres`` user the package makes), trust authentication on 127.0.0.1 only, its socket in
its own folder, stopped by the PID in ``postmaster.pid``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from edge.core.errors import EdgeError
from edge.demos.broker import free_port, wait_until


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/15/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """``Postgres().start()``; ``url`` for psycopg; ``close()`` stops it and removes it all."""

    def __init__(self, database: str = "edge") -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="edge-postgres-"))
        self.data = self.folder / "data"
        self.database = database
        self.log = self.folder / "server.log"
        self.user = "edge"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_owner(self, *command: str | Path) -> list[str]:
        line = [str(c) for c in command]
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *line]
        return line

    def start(self) -> Postgres:
        if self.bin is None:
            raise EdgeError("PostgreSQL's server is not installed",
                            "apt-get install -y postgresql (`make test` does it as root)")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            self.folder.chmod(0o755)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        subprocess.run(self._as_owner(self.bin / "initdb", "-D", self.data, "-A", "trust",
                                      "-U", self.user, "--no-sync", "-E", "UTF8"),
                       check=True, capture_output=True)
        self.start_again()
        subprocess.run(self._as_owner(self.bin / "createdb", "-h", "127.0.0.1",
                                      "-p", str(self.port), "-U", self.user, self.database),
                       check=True, capture_output=True)
        return self

    def start_again(self) -> None:
        """The same server (data, port) after ``stop()``: a database that comes back."""
        assert self.bin is not None
        subprocess.run(self._as_owner(
            self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200", "start"), check=True, capture_output=True)

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """SIGINT: PostgreSQL's fast shutdown (disconnect clients, then stop)."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        wait_until(lambda: not _alive(pid), 30, step=0.1)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
