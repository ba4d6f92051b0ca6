#!/usr/bin/env python3
"""Build a TensorRT engine from a manifest's ONNX model (same as `edge models build-engine`).

Usage: .venv/bin/python tools/build_engine.py --model retinaface-mnet025 --precision fp16
       [--input-size 640x480] [--max-batch 32] [--calibration FOLDER] [--workspace-mb 1024]
"""

import sys

from edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["models", "build-engine", *sys.argv[1:]]))
