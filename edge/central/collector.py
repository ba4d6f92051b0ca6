"""The central collector: the devices' topics into the database, none lost, none twice.

- MQTT 5 persistent session: clean start off and a session expiry (``central.
  session_expiry_s``, 7 days by default), so the broker queues QoS 1 alerts while the
  collector is down and delivers them when it is back (mosquitto: ``persistence true``).
- Risk and stats through the shared subscription ``$share/<group>/...``: replicas in one
  group split them, each message to one replica. Status (availability) unshared, so every
  replica gets the retained state of every device when it subscribes (a shared
  subscription receives no retained messages) and each stores it: it is an idempotent
  upsert.
- The acknowledgement is ours to send (paho's ``manual_ack``): a batch is committed, then
  each of its messages is acknowledged. A crash between the two makes the broker send the
  batch again, and the alert's unique message id stores it once. A database that fails
  leaves the batch unacknowledged and is retried with backoff, never dropped.
- Callbacks only queue (and paho runs them with exceptions suppressed); one writer thread
  owns the database connection. A message id (mid) is only meaningful on the connection
  it came on: after a reconnect the broker resends what was not acknowledged, so acks for
  an earlier connection are dropped, under a lock that the connect callback also takes.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.central.database import Database, DatabaseError, SchemaTooNew
from edge.central.ledger import record
from edge.central.messages import Incoming, Rejection, parse
from edge.core.faults import Fault
from edge.core.logs import get_logger
from edge.core.text import printable
from edge.publish.connection import new_client
from edge.publish.payload import status_reason
from edge.secrets import credential
from edge.settings import CentralSettings

BATCH = 500  # messages per transaction at most
WAIT_S = 0.02  # how long a batch waits to fill once its first message is there
RECEIVE_MAXIMUM = 1000  # unacknowledged messages the broker may send us (MQTT 5)
log = get_logger(__name__)


def default_client_id() -> str:
    return f"edge-central-{socket.gethostname()}"[:64]


@dataclass
class IngestCounts:
    """What the collector did since it started, for /metrics and the logs."""

    received: Counter[str] = field(default_factory=Counter)  # by kind: risk, stats, status
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    alerts_stored: int = 0
    duplicates: int = 0
    batches: int = 0
    last_commit: float | None = None
    lag_s: float = 0.0  # receipt to commit, the oldest message of the last batch
    db_failures: int = 0


@dataclass(frozen=True)
class _Queued:
    generation: int
    mid: int
    qos: int
    incoming: Incoming


class Collector:
    def __init__(self, settings: CentralSettings, database: Database,
                 client_id: str | None = None) -> None:
        self.settings = settings
        self.database = database
        self.client_id = client_id or settings.client_id or default_client_id()
        self.counts = IngestCounts()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._inbox: queue.Queue[_Queued] = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.storage = Fault("central_database_failed", "central_database_recovered",
                             "messages stay unacknowledged at the broker; retrying")
        self.reachability = Fault("central_mqtt_unreachable", "central_mqtt_reachable",
                                  "the broker queues alerts for this session; retrying")
        self.client = self._make_client()

    # --- set-up --------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        cfg = self.settings
        client = new_client(
            self.client_id, ca_file=cfg.ca_file, cert_file=cfg.cert_file, key_file=cfg.key_file,
            tls_names="central.ca_file, central.cert_file and central.key_file",
            username=cfg.username, manual_ack=True, max_backoff_s=30,
            password=(cfg.password.get_secret_value() if cfg.password is not None
                      else credential("central-mqtt-password")))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    @property
    def topics(self) -> list[tuple[str, int]]:
        prefix, group = self.settings.topic_prefix, self.settings.share_group
        return [(f"$share/{group}/{prefix}/+/+/risk/+", 1),
                (f"$share/{group}/{prefix}/+/+/stats", 1),
                (f"{prefix}/+/+/status", 1)]

    def start(self) -> Collector:
        self._migrate()
        self._writer = threading.Thread(target=self._write_loop, name="central-writer",
                                        daemon=True)
        self._writer.start()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect_async(self.settings.host, self.settings.port,
                                  keepalive=self.settings.keepalive, clean_start=False,
                                  properties=properties)
        self.client.loop_start()
        log.info("central_started", client_id=self.client_id, broker=f"{self.settings.host}:"
                 f"{self.settings.port}", database=self.database.where,
                 share_group=self.settings.share_group,
                 session_expiry_s=self.settings.session_expiry_s)
        return self

    def _migrate(self) -> None:
        """The schema, once the database answers: a PostgreSQL server that is down at boot is
        waited for (said once); a schema newer than this code, or an SQLite file that
        cannot be opened (a setting to fix, not a server to wait for), is an error at once."""
        backoff = 1.0
        while True:
            try:
                self.database.migrate()
            except Exception as exc:  # down, restarting, refusing: said once, retried
                if isinstance(exc, SchemaTooNew) or (
                        isinstance(exc, DatabaseError) and self.database.dialect == "sqlite"):
                    raise
                self.storage.update(str(exc), "waiting for the database; retrying")
                self.database.discard()
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)
                continue
            self.storage.update(None)
            return

    def stop(self, drain_s: float = 5.0) -> None:
        """Commit and acknowledge what arrived, then disconnect: the session stays."""
        deadline = time.monotonic() + drain_s
        while not self._inbox.empty() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        if self._writer is not None:
            self._writer.join(drain_s + 5)
        self.client.disconnect()
        self.client.loop_stop()
        log.info("central_stopped", alerts_stored=self.counts.alerts_stored,
                 duplicates=self.counts.duplicates, rejected=sum(self.counts.rejected.values()))

    # --- paho callbacks: they only queue or flag --------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode,
                    _p: Properties | None) -> None:
        if reason.is_failure:
            self.reachability.update(f"the broker refused the connection: {reason}")
            return
        with self._ack_lock:
            self._generation += 1
        self.reachability.update(None)
        self.connected.set()
        log.info("central_connected", session_present=bool(getattr(flags, "session_present",
                                                                    False)))
        client.subscribe(self.topics)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self.reachability.update(f"{self.settings.host}:{self.settings.port}: no connection, "
                                 "or the TLS handshake failed")

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode,
                       _p: Properties | None) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("central_disconnected", reason=str(reason))

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: list[ReasonCode],
                      _p: Properties | None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("central_subscribe_refused", reasons=refused,
                      hint="the broker's ACL must let the collector read "
                      f"{self.settings.topic_prefix}/#; shared subscriptions need MQTT 5 "
                      "and mosquitto 2")
            return
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(_Queued(self._generation, message.mid, message.qos, Incoming(
            message.topic, bytes(message.payload), time.time(), status_reason(message))))

    # --- the writer thread ---------------------------------------------------------------------
    def _take_batch(self) -> list[_Queued]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + WAIT_S
        while len(batch) < BATCH:
            try:
                batch.append(self._inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        backoff = 0.5
        pending: list[_Queued] = []
        while True:
            if not pending:
                if self._stop.is_set() and self._inbox.empty():
                    return
                pending = self._take_batch()
                if not pending:
                    continue
            try:
                self._write(pending)
            except Exception as exc:  # the database is down or full: keep the batch, retry
                self.counts.db_failures += 1
                self.storage.update(str(exc) if isinstance(exc, DatabaseError)
                                    else f"{self.database.where}: {exc}")
                self.database.discard()  # this thread's connection is opened afresh next time
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)
                continue
            self.storage.update(None)
            backoff = 0.5
            self._ack(pending)
            pending = []

    def _write(self, batch: list[_Queued]) -> None:
        parsed = [parse(item.incoming, self.settings.topic_prefix,
                        self.settings.max_message_bytes) for item in batch]
        written = record(self.database.connection(), parsed, self.client_id)
        now = time.time()
        counts = self.counts
        counts.batches += 1
        counts.alerts_stored += written.alerts
        counts.duplicates += written.duplicates
        counts.last_commit = now
        counts.lag_s = now - min(item.incoming.received_at for item in batch)
        for item, message in zip(batch, parsed):
            counts.received[_kind(item.incoming.topic)] += 1
            if isinstance(message, Rejection):
                counts.rejected[message.reason] += 1
                log.warning("central_message_rejected", topic=printable(message.topic),
                            reason=message.reason, detail=printable(message.detail),
                            size=message.size)

    def _ack(self, batch: list[_Queued]) -> None:
        with self._ack_lock:
            for item in batch:
                if item.qos > 0 and item.generation == self._generation:
                    self.client.ack(item.mid, item.qos)


def _kind(topic: str) -> str:
    """risk, stats, status or other: a bounded set of names for the counters."""
    parts = topic.split("/")
    if len(parts) >= 2 and parts[-2] == "risk":
        return "risk"
    return parts[-1] if parts[-1] in ("stats", "status") else "other"
