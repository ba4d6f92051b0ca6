#!/usr/bin/env python3
"""Replay a synthetic cohort through the real analytics (same as `edge simulate`).

Usage: .venv/bin/python tools/simulate.py [--people 10] [--weeks 4] [--seed 7]
       [--lof-threshold 2.0] [--png simulation-timeline.png]
"""

import sys

from edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["simulate", *sys.argv[1:]]))
