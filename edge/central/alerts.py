"""``edge alerts``: the central side's live view of risk alerts, de-duplicated by message id.

For the people who read alerts at the central broker. Subscribes to every device's risk
and status topics under a prefix and prints one line per new alert; a resent copy (same
message id) is counted, not shown twice.
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
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from edge.core.errors import EdgeError
from edge.core.text import printable
from edge.publish.payload import RiskAlert
from edge.publish.tls import use_tls
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

    def handle(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/status"):
            device = "/".join(topic.split("/")[-3:-1])
            print(f"{_now():20} {printable(device)}: {printable(payload.decode(errors='replace'))}",
                  file=self.out, flush=True)
            return
        try:
            alert = RiskAlert.model_validate_json(payload)
        except (ValidationError, json.JSONDecodeError):
            self.malformed += 1
            print(f"{_now():20} ignored a malformed message on {printable(topic)}",
                  file=self.out, flush=True)
            return
        if alert.message_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(alert.message_id)
        self.alerts.append(alert)
        # every field is printed as visible text: a payload's escape sequences could clear
        # the screen and print a fake "All clear"
        print(f"{_now():20} {printable(alert.site):10} {printable(alert.device):14} "
              f"{alert.person:16} {printable(alert.hour_start[:16]):17} {alert.level:>5}  "
              f"{printable(alert.label)}", file=self.out, flush=True)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def watch_alerts(host: str, port: int, prefix: str, *, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 count: int | None = None, timeout: float | None = None,
                 out: TextIO = sys.stdout, stop: threading.Event | None = None,
                 view: AlertView | None = None) -> AlertView:
    """Print alerts until ``count`` unique ones arrived, ``timeout`` passed, ``stop`` is set,
    or Ctrl-C."""
    view = view or AlertView(out=out)
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.suppress_exceptions = True
    if ca_file:
        use_tls(client, ca_file, cert_file, key_file,
                names="--ca-file, --cert-file and --key-file")

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                   _p: Properties | None) -> None:
        if not reason.is_failure:
            c.subscribe([(Topics.all_risk(prefix), 1), (Topics.all_status(prefix), 1)])

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        inbox.put((message.topic, bytes(message.payload)))

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise EdgeError(f"cannot reach the broker at {host}:{port} ({exc})",
                        "check --broker and --port, and that the broker is running") from None
    client.loop_start()
    print(HEADER, file=out, flush=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while count is None or len(view.seen) < count:
            if deadline is not None and time.monotonic() >= deadline:
                break
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
    print(f"{len(view.seen)} alerts, {view.duplicates} duplicate copies ignored, "
          f"{view.malformed} malformed", file=out, flush=True)
    return view
