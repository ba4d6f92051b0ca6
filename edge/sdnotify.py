"""The systemd notify protocol in a few lines: READY, WATCHDOG, STATUS, STOPPING.

A datagram to ``$NOTIFY_SOCKET`` (``@`` means the abstract namespace). Outside systemd
the variable is unset and every call is a no-op. ``WATCHDOG=1`` is sent only while frames
are really processed, so a stalled camera or a hung model lets systemd restart us.

Written here rather than taken from a library: python-systemd needs libsystemd's headers
and a compiler on the box, and the protocol is one ``sendto`` per message.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_s = (int(os.environ["WATCHDOG_USEC"]) / 1e6
                           if os.environ.get("WATCHDOG_USEC", "").isdigit() else None)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        if not self.address:
            return False
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
