"""A throwaway mosquitto on a free loopback port, with its own folder and config file.

Used by the tests, the MQTT benchmark and the demo. It is stopped by PID. Started as root,
mosquitto drops to the ``mosquitto`` user before it opens its ACL, certificates and
persistence files, so the folder is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edge.core.errors import EdgeError

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).is_file()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


class Broker:
    def __init__(self, *, acl: str | None = None, tls: dict[str, Path] | None = None,
                 persistence: bool = True, passwords: dict[str, str] | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        """``passwords``: user -> password; then nobody connects without one."""
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="edge-mosquitto-"))
        self.folder.chmod(0o755)
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type subscribe"]
        if tls:
            for name, path in tls.items():
                target = self.folder / Path(path).name
                shutil.copy(path, target)
                lines.append(f"{name} {target}")
            lines += ["require_certificate true", "use_identity_as_username true"]
        elif passwords:
            password_file = self.folder / "passwords"
            password_file.touch(mode=0o600)
            for user, password in passwords.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(password_file), user, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            (self.folder / "acl").write_text(acl)
            lines.append(f"acl_file {self.folder / 'acl'}")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/",
                      "autosave_interval 1"]
        lines += extra
        (self.folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam("mosquitto")
            for path in [self.folder, *self.folder.iterdir()]:
                os.chown(path, user.pw_uid, user.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.folder.parent / f"{self.folder.name}.log"

    def start(self) -> Broker:
        if not mosquitto_available():
            raise EdgeError("mosquitto is not installed",
                            "apt-get install -y mosquitto (`make test` does it as root)")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")],
                                            stdout=log, stderr=log)
        if not wait_until(self._listening, 10):
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}")
        return self

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.log.unlink(missing_ok=True)
