"""Test helpers for MQTT: a recording subscriber and a test PKI (the broker is edge's own)."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.publish.payload import status_reason


@dataclass
class Subscriber:
    """A central-side client recording every message; a persistent session by default."""

    port: int
    topics: list[str]
    host: str = "127.0.0.1"
    client_id: str = "test-subscriber"
    tls: dict[str, str] | None = None
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)  # each message's `reason` property
    subscribed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Subscriber:
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.2, 1)
        if self.tls:
            self.client.tls_set(**self.tls)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.connect_async(self.host, self.port, clean_start=False,
                                  properties=properties)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the test subscriber could not subscribe")
        return self

    def _on_connect(self, client, _userdata, _flags, reason, _props) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, _client, _userdata, message) -> None:
        reason = status_reason(message)
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self.reasons.append(reason)

    def payloads(self, kind: str = "risk") -> list[dict]:
        with self._lock:
            found = [json.loads(p) for _t, p, _r in self.messages if p.startswith(b"{")]
        return [p for p in found if p.get("kind") == kind]

    def message_ids(self) -> set[str]:
        return {p["message_id"] for p in self.payloads()}

    def statuses(self) -> list[bytes]:
        with self._lock:
            return [p for t, p, _r in self.messages if t.endswith("/status")]

    def status_reasons(self) -> list[tuple[bytes, str | None]]:
        """Each status message with its `reason` property."""
        with self._lock:
            return [(p, r) for (t, p, _r), r in zip(self.messages, self.reasons)
                    if t.endswith("/status")]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_pki(folder: Path) -> dict[str, Path]:
    """A test CA, a server certificate for "localhost" only, a client and a stranger certificate."""
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edge test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    (folder / "server.ext").write_text("subjectAltName=DNS:localhost\n")  # not 127.0.0.1
    for name, subject in (("server", "/CN=localhost"), ("client", "/CN=entrance-01"),
                          ("stranger", "/CN=stranger")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
        extra = ["-extfile", "server.ext"] if name == "server" else []
        if name == "stranger":  # signed by its own key: a certificate our CA never issued
            run("req", "-x509", "-key", "stranger.key", "-in", "stranger.csr", "-days", "2",
                "-out", "stranger.pem")
            continue
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *extra)
    for path in folder.iterdir():
        path.chmod(0o644)
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key",
                                             "client.pem", "client.key", "stranger.pem",
                                             "stranger.key")}
