"""A device process for the fault tests: commits alerts to the outbox and publishes them.

Usage: python tests/device_process.py STATE_DIR --port P [--submit N] [--interval S]
       [--stay] [--protocol 5] [--device ID]

Prints each alert's message id once it is committed (so the test knows what was sent),
then "drained" when the outbox is empty. With --stay it keeps running until SIGTERM,
which stops it cleanly (``stopped``); SIGKILL stops it dirty (the will: ``offline``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from edge.core.clock import SystemClock
from edge.core.logs import configure_logging
from edge.core.records import RiskGrade
from edge.publish.client import Publisher
from edge.publish.outbox import alerts_for
from edge.secrets import device_key
from edge.settings import Settings
from edge.store import Store

PERSON = "E-1001"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--submit", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--stay", action="store_true")
    parser.add_argument("--protocol", default="5")
    parser.add_argument("--device", default="entrance-01")
    args = parser.parse_args()
    configure_logging(args.device, "WARNING", json=True)
    settings = Settings(device={"id": args.device, "site": "hq"},
                        mqtt={"port": args.port, "protocol": args.protocol},
                        storage={"state_dir": args.state_dir})
    stopping = False

    def on_term(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    store = Store(args.state_dir)
    store.enroll(PERSON, "C-1", date(2026, 1, 1), [])
    key = device_key(args.state_dir)
    publisher = Publisher(settings, args.state_dir).start()
    first_hour = datetime(2026, 3, 2, tzinfo=timezone.utc)
    for index in range(args.submit):
        grade = RiskGrade(PERSON, first_hour + timedelta(hours=index), "graded", 2,
                          "Low risk", 1.9, True, ("sad", "negative"), 40)
        now = SystemClock().now()
        messages = alerts_for([grade], settings, key, now)
        store.enqueue(messages, max_messages=10_000)
        print(messages[0].message_id, flush=True)
        publisher.wake()
        time.sleep(args.interval)
    while not stopping:
        if not args.stay and sum(store.outbox_counts().values()) == 0:
            print("drained", flush=True)
            break
        time.sleep(0.05)
    publisher.stop()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
