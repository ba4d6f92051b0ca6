#!/usr/bin/env python3
"""Time the analytics on this machine: grading at site scale, and the store's inserts.

Usage: .venv/bin/python tools/bench_analytics.py [--people 1000] [--hours 168]

1. One grading pass: every person's newest hour graded against a history of --hours
   hours (scikit-learn's Manhattan LOF over the ring, 3-sigma), as at the close of each
   clock hour.
2. Store inserts with synchronous=FULL, in transactions of 1, 10, 100 and 1000 rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from edge.analytics.grading import GradingPolicy, grade_hour
from edge.core.records import HourlyVector
from edge.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=168)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    histories = rng.dirichlet(np.ones(10), (args.people, args.hours))
    newest = rng.dirichlet(np.ones(10), args.people)
    policy = GradingPolicy()

    began = time.perf_counter()
    for person in range(args.people):
        grade_hour(HourlyVector(f"p{person}", start, newest[person], 10), histories[person],
                   policy)
    elapsed = time.perf_counter() - began
    print(f"grading pass: {args.people} people x {args.hours} h history: {elapsed:.2f} s "
          f"({elapsed / args.people * 1000:.2f} ms a person)")

    with tempfile.TemporaryDirectory() as folder, Store(Path(folder)) as store:
        for person in range(100):
            store.enroll(f"p{person}", "BENCH", date(2026, 1, 1), [])
        print("store inserts, synchronous=FULL (hourly vectors, ring of 168 per person):")
        hour = 0
        for batch in (1, 10, 100, 1000):
            rows, began = 0, time.perf_counter()
            while time.perf_counter() - began < 3.0:
                vectors = [HourlyVector(f"p{(rows + i) % 100}",
                                        start + timedelta(hours=hour + (rows + i) // 100),
                                        newest[i % args.people], 10) for i in range(batch)]
                store.record_hours(vectors, keep_hours=168)
                rows += batch
            hour += rows // 100 + 1
            rate = rows / (time.perf_counter() - began)
            print(f"  {batch:5d} rows a transaction: {rate:9.0f} rows/s")


if __name__ == "__main__":
    main()
