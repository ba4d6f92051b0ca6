#!/usr/bin/env python3
"""Train the study's expression classifier (VGG16; MobileNet or ResNet-50 to compare).

Usage: .venv/bin/python tools/train_emotion.py DATA [--arch vgg16] [--epochs 10]
       [--size 64] [--colour GRAY] [--name vgg16-expression] [--models engines]

DATA holds one folder per emotion (angry disgust fear happy sad surprise neutral). The
ONNX model and its manifest entry go into --models; select it with
`models.expression = "<name>"`. Needs the optional extra: pip install -e '.[train]'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.core.errors import EdgeError
from edge.core.manifest import Manifest, load_manifest, save_manifest
from edge.training.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--arch", choices=["vgg16", "mobilenet", "resnet50"], default="vgg16")
    parser.add_argument("--name", help="manifest name (default: <arch>-expression)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--colour", choices=["GRAY", "RGB"], default="GRAY")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, help="batches per epoch (smoke tests)")
    parser.add_argument("--models", type=Path, default=Path("engines"))
    args = parser.parse_args(argv)
    try:
        entry = train(TrainConfig(
            data=args.data, out=args.models, architecture=args.arch,
            name=args.name or f"{args.arch}-expression", size=args.size, colour=args.colour,
            epochs=args.epochs, batch=args.batch, learning_rate=args.lr, width=args.width,
            max_steps=args.max_steps))
        try:
            manifest = load_manifest(args.models)
        except EdgeError:
            manifest = Manifest()
        manifest.models[entry.name] = entry
        save_manifest(args.models, manifest)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.models / entry.file} and its manifest entry {entry.name!r}; use it "
          f'with models.expression = "{entry.name}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
