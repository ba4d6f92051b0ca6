"""``edge alerts``: a live terminal view of risk alerts, de-duplicated by message id.

For a look at what the devices send right now. Subscribes to every device's risk and
status topics under a prefix and prints one line per new alert (``--json``: one JSON object
per line); a resent copy (same message id) is counted, not shown twice. It keeps nothing:
alerts published while it is not running are the collector's (`edge central run`), which
holds a persistent session and a database.
"""

from __future__ import annotations

import json
import queue
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from edge.core.errors import EdgeError
from edge.core.text import printable
from edge.publish.connection import new_client
from edge.publish.payload import RiskAlert, status_reason
from edge.publish.topics import Topics

HEADER = (f"{'received':20} {'site':10} {'device':14} {'person':16} {'hour (UTC)':17} "
          f"{'level':>5}  label")


@dataclass
class AlertView:
    out: TextIO = sys.stdout
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    malformed: int = 0
    alerts: list[RiskAlert] = field(default_factory=list)
    as_json: bool = False

    def _say(self, line: str, record: dict[str, Any]) -> None:
        print(json.dumps(record) if self.as_json else line, file=self.out, flush=True)

    def handle(self, topic: str, payload: bytes, reason: str | None = None) -> None:
        if topic.endswith("/status"):
            site, device = topic.split("/")[-3:-1]
            status = payload.decode(errors="replace")
            why = f" ({reason})" if reason else ""
            self._say(f"{_now():20} {printable(site)}/{printable(device)}: "
                      f"{printable(status)}{printable(why)}",
                      {"kind": "status", "received": _now(), "site": site, "device": device,
                       "status": status, "reason": reason})
            return
        try:
            alert = RiskAlert.model_validate_json(payload)
        except (ValidationError, json.JSONDecodeError):
            self.malformed += 1
            self._say(f"{_now():20} ignored a malformed message on {printable(topic)}",
                      {"kind": "malformed", "received": _now(), "topic": topic})
            return
        if alert.message_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(alert.message_id)
        self.alerts.append(alert)
        # every field is printed as visible text: a payload's escape sequences could clear
        # the screen and print a fake "All clear"
        self._say(f"{_now():20} {printable(alert.site):10} {printable(alert.device):14} "
                  f"{alert.person:16} {printable(alert.hour_start[:16]):17} {alert.level:>5}  "
                  f"{printable(alert.label)}",
                  {"received": _now(), **alert.model_dump()})


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def watch_alerts(host: str, port: int, prefix: str, *, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 count: int | None = None, timeout: float | None = None,
                 out: TextIO = sys.stdout, stop: threading.Event | None = None,
                 view: AlertView | None = None, username: str | None = None,
                 password: str | None = None, as_json: bool = False) -> AlertView:
    """Print alerts until ``count`` unique ones arrived, ``timeout`` passed, ``stop`` is set,
    or Ctrl-C."""
    view = view or AlertView(out=out, as_json=as_json)
    inbox: queue.Queue[tuple[str, bytes, str | None]] = queue.Queue()
    client = new_client(ca_file=ca_file, cert_file=cert_file, key_file=key_file,
                        tls_names="--ca-file, --cert-file and --key-file", username=username,
                        password=password)
    refused: list[str] = []

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                   _p: Properties | None) -> None:
        if reason.is_failure:
            refused.append(str(reason))
            return
        c.subscribe([(Topics.all_risk(prefix), 1), (Topics.all_status(prefix), 1)])

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        inbox.put((message.topic, bytes(message.payload), status_reason(message)))

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise EdgeError(f"cannot reach the broker at {host}:{port} ({exc})",
                        "check --broker and --port, and that the broker is running") from None
    client.loop_start()
    if not as_json:
        print(HEADER, file=view.out, flush=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while count is None or len(view.seen) < count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if refused:
                raise EdgeError(f"the broker at {host}:{port} refused the connection "
                                f"({refused[0]})", "check --username and the password "
                                "($EDGE_ALERTS_PASSWORD), or the client certificate")
            if stop is not None and stop.is_set() and inbox.empty():
                break
            try:
                view.handle(*inbox.get(timeout=0.2))
            except queue.Empty:
                continue
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    if not as_json:
        print(f"{len(view.seen)} alerts, {view.duplicates} duplicate copies ignored, "
              f"{view.malformed} malformed", file=view.out, flush=True)
    return view
