#!/usr/bin/env python3
"""Measure the alert path on loopback: outbox throughput and publish-to-receive latency.

Usage: .venv/bin/python tools/bench_mqtt.py [--alerts 1000] [--latency-samples 300]

Starts a throwaway mosquitto on a free loopback port (needs `mosquitto` installed).
1. Outbox commits with synchronous=FULL: alerts a second, one alert a transaction.
2. Drain: alerts a second from a full outbox to PUBACK and deletion.
3. Latency: from committing an alert to a subscriber receiving it, one alert every 20 ms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.core.logs import configure_logging
from edge.core.records import RiskGrade
from edge.demos.broker import Broker, wait_until
from edge.publish.client import Publisher
from edge.publish.outbox import alerts_for, queue_alerts
from edge.publish.payload import RiskAlert
from edge.publish.topics import Topics
from edge.settings import Settings
from edge.store import Store

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def grade(index: int) -> RiskGrade:
    return RiskGrade("E-1", START + timedelta(hours=index), "graded", 2, "Low risk", 1.8, True,
                     ("sad",), 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    broker = Broker(persistence=False).start()
    received: dict[str, float] = {}
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        received.setdefault(RiskAlert.model_validate_json(message.payload).message_id,
                            time.perf_counter())

    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe(Topics.all_risk("edge"), qos=1)
    subscriber.loop_start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            state = Path(folder)
            settings = Settings.model_validate({
                "mqtt": {"port": broker.port, "outbox_max_messages": 100_000,
                         "stats_interval_s": 3600}, "storage": {"state_dir": state}})
            key = b"k" * 32
            with Store(state) as store:
                store.enroll("E-1", "BENCH", date(2026, 1, 1), [])
                began = time.perf_counter()
                for index in range(args.alerts):
                    queue_alerts(store, [grade(index)], settings, key, START)
                commit_rate = args.alerts / (time.perf_counter() - began)
                print(f"outbox commits (synchronous=FULL, one alert a transaction): "
                      f"{commit_rate:8.0f} alerts/s")
                began = time.perf_counter()
                publisher = Publisher(settings, state).start()
                publisher.wake()
                wait_until(lambda: sum(store.outbox_counts().values()) == 0, 120, 0.01)
                drain_rate = args.alerts / (time.perf_counter() - began)
                print(f"drain to PUBACK and delete (incl. connect):           "
                      f"{drain_rate:8.0f} alerts/s")
                wait_until(lambda: len(received) >= args.alerts, 30)
                latencies = []
                for index in range(args.latency_samples):
                    sent = time.perf_counter()
                    (message,) = alerts_for([grade(args.alerts + index)], settings, key, START)
                    store.enqueue([message], max_messages=100_000)
                    publisher.wake()
                    if wait_until(lambda m=message.message_id: m in received, 10, 0.0005):
                        latencies.append((received[message.message_id] - sent) * 1000)
                    time.sleep(0.02)
                publisher.stop()
            lat = np.asarray(latencies)
            print(f"commit-to-receive latency over {len(lat)} alerts: median "
                  f"{np.median(lat):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
                  f"max {lat.max():.2f} ms")
    finally:
        subscriber.loop_stop()
        broker.close()


if __name__ == "__main__":
    main()
