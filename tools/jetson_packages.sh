#!/usr/bin/env bash
# What a Jetson's venv needs for the TensorRT back end, from its L4T release: one pip
# requirement a line. Used by bootstrap.sh; run by hand to see it.
#
#   jetson_packages.sh [RELEASE_FILE]     (default /etc/nv_tegra_release)
#
# L4T R36 is JetPack 6 (CUDA 12), R38 and later JetPack 7 (CUDA 13): NVIDIA's CUDA Python
# bindings must match that CUDA major version (their wheels install without a compiler,
# unlike pycuda). NumPy stays below 2 because the venv sees JetPack's system Python bindings
# (TensorRT's, OpenCV's), built against NumPy 1. TensorRT itself is JetPack's
# python3-libnvinfer, seen through --system-site-packages. Exits 1 on JetPack 5 or older.
set -euo pipefail
release_file="${1:-/etc/nv_tegra_release}"
major="$(sed -n 's/^# R\([0-9]*\) (release).*/\1/p' "$release_file")"
if [ -z "$major" ]; then
    echo "$release_file: no L4T release in it" >&2
    exit 1
fi
if [ "$major" -lt 36 ]; then
    echo "L4T R$major is JetPack 5 or older (TensorRT 8.5 or older): the TensorRT back end" \
         "needs JetPack 6.1 or later (JetPack 6.0's TensorRT 8.6 at the least). Upgrade" \
         "the box, or run it with models.backend = 'onnxruntime'" >&2
    exit 1
fi
if [ "$major" -eq 36 ]; then
    echo "cuda-bindings>=12.2,<13"
else
    echo "cuda-bindings>=13,<14"
fi
echo "numpy>=1.26,<2"
