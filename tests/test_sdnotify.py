from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from edge.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_messages_reach_the_socket(listener) -> None:
    path, sock = listener
    notifier = Notifier(str(path))
    assert notifier.ready("camera delivering")
    assert sock.recv(256) == b"READY=1\nSTATUS=camera delivering"
    assert notifier.watchdog() and sock.recv(256) == b"WATCHDOG=1"
    assert notifier.stopping() and sock.recv(256) == b"STOPPING=1\nSTATUS=stopping"
    notifier.close()


def test_abstract_namespace_address() -> None:
    name = f"edge-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier("@" + name).status("3 people")
        assert sock.recv(256) == b"STATUS=3 people"
    finally:
        sock.close()


def test_outside_systemd_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled and not notifier.ready("x") and not notifier.watchdog()


def test_watchdog_interval_from_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    assert Notifier("/x").watchdog_s == 20.0
