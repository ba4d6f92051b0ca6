"""``/metrics`` in Prometheus' text format, read fresh from the database at each scrape.

Fleet-wide figures come from the database, so every replica reports the same devices and
alerts; the ingest counters are this replica's own (Prometheus sums them per job).
Names: ``edge_central_*``. What to alert on is in the README ("Operations").
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.central.collector import IngestCounts
from edge.central.database import Database
from edge.central.messages import REJECTION_REASONS
from edge.central.queries import alert_counts, devices


class FleetMetrics(Collector):
    def __init__(self, database: Database, stale_after_s: float,
                 counts: IngestCounts | None) -> None:
        self.database = database
        self.stale_after_s = stale_after_s
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        db = self.database.connection()
        now = time.time()
        health = Counter(d.health(now, self.stale_after_s) for d in devices(db, None))
        gauge = GaugeMetricFamily("edge_central_devices", "devices by health",
                                  labels=["health"])
        for state in ("online", "offline", "stale", "unknown"):
            gauge.add_metric([state], health.get(state, 0))
        yield gauge
        alerts = GaugeMetricFamily("edge_central_alerts", "alerts stored, by level and state",
                                   labels=["level", "state"])
        for level, state, count in alert_counts(db):
            alerts.add_metric([str(level), state], count)
        yield alerts
        if self.counts is None:
            return
        counts = self.counts
        received = CounterMetricFamily("edge_central_messages_received",
                                       "messages taken from the broker, by kind",
                                       labels=["kind"])
        for kind in ("risk", "stats", "status", "other"):
            received.add_metric([kind], counts.received.get(kind, 0))
        yield received
        rejected = CounterMetricFamily("edge_central_messages_rejected",
                                       "messages refused (never stored), by reason",
                                       labels=["reason"])
        for reason in REJECTION_REASONS:
            rejected.add_metric([reason], counts.rejected.get(reason, 0))
        yield rejected
        yield CounterMetricFamily("edge_central_alerts_stored", "new alerts committed",
                                  value=counts.alerts_stored)
        yield CounterMetricFamily("edge_central_alert_duplicates",
                                  "copies of alerts already stored", value=counts.duplicates)
        yield CounterMetricFamily("edge_central_database_failures",
                                  "batches that failed to commit (retried)",
                                  value=counts.db_failures)
        yield GaugeMetricFamily("edge_central_ingest_lag_seconds", "receipt to commit, the "
                                "oldest message of the last batch", value=counts.lag_s)
        yield GaugeMetricFamily("edge_central_last_commit_age_seconds",
                                "seconds since the last batch was committed",
                                value=now - counts.last_commit if counts.last_commit else -1)


def exposition(database: Database, stale_after_s: float, counts: IngestCounts | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetMetrics(database, stale_after_s, counts))
    return generate_latest(registry)
