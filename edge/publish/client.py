"""The MQTT publisher: one thread owns the paho client and sends what the outbox holds.

- paho 2.x, callback API version 2, MQTT 5 by default, ``connect_async`` + ``loop_start``
  so a broker that is down at boot is retried (1 s to 60 s backoff), never fatal.
- Callbacks only put an event on a queue (and paho runs them with exceptions suppressed):
  an exception cannot kill paho's loop thread, and no lock of ours is held while paho
  holds its own (``on_publish`` runs under paho's lock; a PUBACK may even arrive before
  ``publish()`` has returned its mid).
- An alert leaves the outbox only on a successful PUBACK. A refusal (MQTT 5 reason code
  >= 0x80, e.g. 0x87 "Not authorized" from an ACL) is logged with the reason and kept,
  to be tried again after ``refused_retry_s``. With MQTT 3.1.1 a broker acknowledges a
  publish its ACL denied as success: the device cannot tell, so 5 is the default.
- After a reconnect everything unacknowledged is sent again; consumers de-duplicate by
  message id.
- Availability: retained ``online`` on connect, ``offline`` on a clean stop (a plain
  disconnect never sends the will) and as the will; with MQTT 5 the user property
  ``reason`` says why (``stopped``, ``connection lost``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.core.clock import Clock, SystemClock, utc_text
from edge.core.faults import Fault
from edge.core.logs import get_logger
from edge.publish.connection import new_client
from edge.publish.payload import (
    REASON_LOST,
    REASON_PROPERTY,
    REASON_RUNNING,
    REASON_STOPPED,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    DeviceStats,
    board_temperature_c,
)
from edge.publish.topics import Topics
from edge.secrets import credential
from edge.settings import Settings
from edge.store import Store

MAX_IN_FLIGHT = 20
POLL_S = 0.2
STUCK_S = 30.0  # no turn of the publisher's loop for this long: it counts as stuck
log = get_logger(__name__)


def make_client(settings: Settings, client_id: str) -> mqtt.Client:
    """A paho client configured from the settings: protocol, TLS, credentials, backoff."""
    cfg = settings.mqtt
    password = (cfg.password.get_secret_value() if cfg.password is not None
                else credential("mqtt-password", "EDGE_MQTT_PASSWORD"))
    return new_client(client_id, protocol=mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311,
                      ca_file=cfg.ca_file, cert_file=cfg.cert_file, key_file=cfg.key_file,
                      username=cfg.username, password=password)


class Publisher:
    """Send the outbox to the broker from a background thread."""

    def __init__(self, settings: Settings, state_dir: Path, *, clock: Clock | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.clock = clock or SystemClock()
        self.topics = Topics(settings.mqtt.topic_prefix, settings.device.site, settings.device.id)
        self.client_id = settings.mqtt.client_id or f"edge-{settings.device.id}"
        self.on_event = on_event
        self.connected = threading.Event()
        self.delivered = 0
        self.refused = 0
        self.dropped = 0
        self._started = time.monotonic()
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._metrics: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.restarts = 0  # the loop's failures since start, each retried
        self.heartbeat = time.monotonic()
        self.client = make_client(settings, self.client_id)
        self.client.will_set(self.topics.status, STATUS_OFFLINE, qos=1, retain=True,
                             properties=self._reason(REASON_LOST, PacketTypes.WILLMESSAGE))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.reachability = Fault("mqtt_unreachable", "mqtt_reachable",
                                  "alerts wait in the outbox; retrying with backoff up to 60 s")
        self.client.on_publish = self._on_publish

    def _reason(self, reason: str, packet: int = PacketTypes.PUBLISH) -> Properties | None:
        """The status message's `reason` user property (MQTT 5 only)."""
        if self.settings.mqtt.protocol != "5":
            return None
        properties = Properties(packet)
        properties.UserProperty = (REASON_PROPERTY, reason)
        return properties

    # --- paho callbacks: tiny, they only report -------------------------------------------
    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                    _p: Properties | None) -> None:
        self._events.put(("connected", reason))

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        # no TCP connection, or a TLS handshake that failed: paho itself says nothing
        self._events.put(("connect_failed", None))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                       _p: Properties | None) -> None:
        self._events.put(("disconnected", reason))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode,
                    _p: Properties | None) -> None:
        self._events.put(("published", (mid, reason)))

    # --- public ------------------------------------------------------------------------------
    def start(self) -> Publisher:
        self.client.connect_async(self.settings.mqtt.host, self.settings.mqtt.port,
                                  keepalive=self.settings.mqtt.keepalive)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """New alerts are in the outbox: send them now rather than at the next poll."""
        self._events.put(("wake", None))

    def note_dropped(self, count: int) -> None:
        self.dropped += count

    def update_metrics(self, **metrics: Any) -> None:
        """Figures for the stats topic from the service (frames/s, faces/h, latency)."""
        self._events.put(("metrics", metrics))

    def publish_stats_now(self) -> None:
        self._events.put(("stats", None))

    def stop(self, timeout: float = 5.0) -> None:
        """Clean stop: say ``offline`` (retained, reason ``stopped``), then disconnect."""
        self._stop.set()
        self._events.put(("wake", None))
        if self._thread is not None:
            self._thread.join(timeout + 2)
        self.client.loop_stop()

    # --- the publisher thread ------------------------------------------------------------------
    def _emit(self, event: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(event, fields)

    @property
    def alive(self) -> bool:
        """The thread runs and went round its loop within ``STUCK_S``: a dead or stuck
        publisher must not go unnoticed while the frame loop feeds the watchdog."""
        return (self._thread is not None and self._thread.is_alive()
                and time.monotonic() - self.heartbeat < STUCK_S)

    def _run(self) -> None:
        """The loop, supervised: an exception (a full disk under the outbox, a bug) is
        logged, counted in ``restarts`` and retried with backoff, never the end of delivery."""
        backoff = 1.0
        try:
            while not self._stop.is_set():
                try:
                    self._serve()
                    backoff = 1.0
                except Exception as exc:
                    self._failure = exc
                    self.restarts += 1
                    self.heartbeat = time.monotonic()
                    log.error("publisher_failed", error=repr(exc), restarts=self.restarts,
                              action=f"retrying in {backoff:g} s")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
            self._say_stopped()
        finally:
            self.client.disconnect()

    def _serve(self) -> None:
        store = Store(self.state_dir)  # this thread's own connection
        in_flight: dict[int, str] = {}
        next_stats = time.monotonic() + self.settings.mqtt.stats_interval_s
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                self._handle_events(store, in_flight)
                if self.connected.is_set() and len(in_flight) < MAX_IN_FLIGHT:
                    self._send_due(store, in_flight)
                if time.monotonic() >= next_stats:
                    self._send_stats(store)
                    next_stats = time.monotonic() + self.settings.mqtt.stats_interval_s
                if self._failure is not None:
                    log.info("publisher_recovered", restarts=self.restarts)
                    self._failure = None
        finally:
            store.close()

    def _handle_events(self, store: Store, in_flight: dict[int, str]) -> None:
        try:
            event, value = self._events.get(timeout=POLL_S)
        except queue.Empty:
            return
        while True:
            self._handle(event, value, store, in_flight)
            try:
                event, value = self._events.get_nowait()
            except queue.Empty:
                return

    @property
    def unreachable(self) -> bool:
        """The broker could not be reached since the last connection (paho says nothing)."""
        return self.reachability.problem is not None

    def _handle(self, event: str, value: Any, store: Store, in_flight: dict[int, str]) -> None:
        if event == "connected":
            if value.is_failure:
                log.error("mqtt_connect_refused", reason=str(value))
                self._emit("connect_refused", reason=str(value))
                return
            in_flight.clear()  # resend whatever was not acknowledged before
            self.client.publish(self.topics.status, STATUS_ONLINE, qos=1, retain=True,
                                properties=self._reason(REASON_RUNNING))
            self.connected.set()
            self.reachability.update(None)
            log.info("mqtt_connected", host=self.settings.mqtt.host,
                     port=self.settings.mqtt.port, protocol=self.settings.mqtt.protocol)
            self._emit("connected")
        elif event == "connect_failed":
            self.reachability.update(f"{self.settings.mqtt.host}:{self.settings.mqtt.port}: no "
                                     "connection, or the TLS handshake failed")
        elif event == "disconnected":
            was_connected = self.connected.is_set()
            self.connected.clear()
            in_flight.clear()
            if not was_connected:  # refused after the handshake (an unknown certificate)
                self.reachability.update(f"{self.settings.mqtt.host}:{self.settings.mqtt.port}: "
                                         f"refused after the handshake ({value})")
                return
            log.warning("mqtt_disconnected", reason=str(value))
            self._emit("disconnected", reason=str(value))
        elif event == "published":
            mid, reason = value
            message_id = in_flight.pop(mid, None)
            if message_id is None:
                return  # the status message, or a copy from before a reconnect
            if reason.is_failure:
                self.refused += 1
                retry = self.clock.now() + timedelta(seconds=self.settings.mqtt.refused_retry_s)
                store.refused(message_id, str(reason), retry)
                log.warning("alert_refused_by_broker", message_id=message_id,
                            reason=str(reason), retry_after=retry.isoformat(),
                            hint="check the broker's ACL for this device's risk topic")
                self._emit("refused", message_id=message_id, reason=str(reason))
            else:
                store.delivered([message_id])
                self.delivered += 1
                self._emit("delivered", message_id=message_id)
        elif event == "metrics":
            self._metrics.update(value)
        elif event == "stats":
            self._send_stats(store)

    def _send_due(self, store: Store, in_flight: dict[int, str]) -> None:
        due = store.due_messages(self.clock.now(), limit=MAX_IN_FLIGHT - len(in_flight),
                                 exclude=list(in_flight.values()))
        for message in due:
            info = self.client.publish(message.topic, message.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # lost the connection meanwhile: the disconnect event follows
            in_flight[info.mid] = message.message_id

    def _send_stats(self, store: Store) -> None:
        if not self.connected.is_set():
            return
        counts = store.outbox_counts()
        stats = DeviceStats.model_validate({
            "device": self.settings.device.id, "site": self.settings.device.site,
            "at": utc_text(self.clock.now()),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "outbox_depth": sum(counts.values()), "alerts_dropped": self.dropped,
            "alerts_refused": counts.get("refused", 0), "temperature_c": board_temperature_c(),
            **{k: v for k, v in self._metrics.items() if k in DeviceStats.model_fields}})
        self.client.publish(self.topics.stats, stats.encode(), qos=0)

    def _say_stopped(self) -> None:
        if not self.connected.is_set():
            return
        info = self.client.publish(self.topics.status, STATUS_OFFLINE, qos=1, retain=True,
                                   properties=self._reason(REASON_STOPPED))
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=3.0)
        log.info("mqtt_stopped")
